@testable import BastionServer
import Dispatch
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite struct FairBlockingPoolTests {
    /// One thread, held busy by source a's first job while a queues more and b arrives: b runs
    /// second, not after a's backlog, and a's excess beyond its share is refused at once.
    @Test func sourcesTakeTurnsAndTheExcessIsRefused() async throws {
        let threads = NIOThreadPool(numberOfThreads: 1)
        threads.start()
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = FairBlockingPool(pool: threads, perSourceLimit: 2, sharedLimit: 4)
        let order = Mutex<[String]>([])
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let first = try #require(pool.run(on: loop.next(), source: "a") {
            started.signal()
            gate.wait()
            order.withLock { $0.append("a0") }
        })
        // The thread holds a0 from here on, so everything that follows waits.
        started.wait()
        var queued: [EventLoopFuture<Void>] = []
        var refused = 0
        for i in 1...6 {
            if let f = pool.run(on: loop.next(), source: "a", { order.withLock { $0.append("a\(i)") } }) { queued.append(f) } else { refused += 1 }
        }
        let b = try #require(pool.run(on: loop.next(), source: "b") { order.withLock { $0.append("b") } })
        gate.signal()
        try await first.get()
        for f in queued { try await f.get() }
        try await b.get()
        // a alone may queue sharedLimit (4); a's fifth and sixth were refused.
        #expect(refused == 2)
        #expect(order.withLock { $0 } == ["a0", "a1", "b", "a2", "a3", "a4"])
        try await threads.shutdownGracefully()
        try await loop.shutdownGracefully()
    }
}
