import NIOCore

/// NIO's adaptive receive-buffer policy (double after a full read, halve after two reads that fit
/// in half) in a value small enough to live inline in the channel's `RecvByteBufferAllocator`
/// existential. `AdaptiveRecvByteBufferAllocator` does not fit, so every channel got its own heap
/// copy of it on the first read, about 80 bytes per idle connection.
struct CompactRecvBufferAllocator: RecvByteBufferAllocator {
    private let minimum: UInt32
    private let maximum: UInt32
    private var next: UInt32
    private var decreaseNow = false

    /// Sizes are rounded to powers of two: `minimum` and `initial` down, `maximum` up.
    init(minimum: Int, initial: Int, maximum: Int) {
        precondition(minimum > 0 && minimum <= initial && initial <= maximum && maximum <= 1 << 30)
        self.minimum = UInt32(minimum.previousPowerOfTwo)
        self.maximum = UInt32(maximum.nextPowerOfTwo)
        self.next = UInt32(max(initial.previousPowerOfTwo, minimum.previousPowerOfTwo))
    }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: Int(next))
    }

    func nextBufferSize() -> Int? { Int(next) }

    mutating func record(actualReadBytes: Int) -> Bool {
        let half = next >> 1
        if actualReadBytes <= Int(half) && half >= minimum {
            if decreaseNow { next = half }
            decreaseNow.toggle()
            return false
        }
        decreaseNow = false
        guard actualReadBytes >= Int(next), next < maximum else { return false }
        next <<= 1
        return true
    }
}

extension Int {
    fileprivate var previousPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - 1 - leadingZeroBitCount) }
    fileprivate var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
