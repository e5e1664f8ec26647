@testable import BastionServer
import NIOCore
import Testing

@Suite struct CompactRecvBufferAllocatorTests {
    @Test func startsAtInitialRoundedDownToAPowerOfTwo() {
        let allocator = CompactRecvBufferAllocator(minimum: 64, initial: 100, maximum: 1000)
        #expect(allocator.nextBufferSize() == 64)
        #expect(allocator.buffer(allocator: ByteBufferAllocator()).capacity >= 64)
    }

    @Test func doublesAfterAFullReadUpToTheMaximum() {
        var allocator = CompactRecvBufferAllocator(minimum: 64, initial: 64, maximum: 1000)
        var sizes: [Int] = []
        for _ in 0..<6 {
            _ = allocator.record(actualReadBytes: allocator.nextBufferSize()!)
            sizes.append(allocator.nextBufferSize()!)
        }
        // 1000 rounds up to 1024.
        #expect(sizes == [128, 256, 512, 1024, 1024, 1024])
        #expect(allocator.record(actualReadBytes: 1024) == false)
    }

    @Test func halvesOnlyAfterTwoSmallReadsAndNeverBelowTheMinimum() {
        var allocator = CompactRecvBufferAllocator(minimum: 64, initial: 256, maximum: 1024)
        _ = allocator.record(actualReadBytes: 10)
        #expect(allocator.nextBufferSize() == 256)
        _ = allocator.record(actualReadBytes: 10)
        #expect(allocator.nextBufferSize() == 128)
        // A read that is not small resets the count.
        _ = allocator.record(actualReadBytes: 10)
        _ = allocator.record(actualReadBytes: 100)
        _ = allocator.record(actualReadBytes: 10)
        #expect(allocator.nextBufferSize() == 128)
        for _ in 0..<10 { _ = allocator.record(actualReadBytes: 1) }
        #expect(allocator.nextBufferSize() == 64)
    }

    @Test func fitsInlineInTheExistential() {
        // Three words: larger values are boxed on the heap once per channel.
        #expect(MemoryLayout<CompactRecvBufferAllocator>.size <= 3 * MemoryLayout<Int>.size)
    }
}
