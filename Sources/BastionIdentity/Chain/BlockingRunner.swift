import BastionCore
import NIOCore

/// Runs CPU-heavy work (a password KDF) on the broker's bounded blocking pool, never on an event
/// loop or the cooperative thread pool, and awaits it.
public struct BlockingRunner: Sendable {
    let pool: any BlockingWorkPool
    /// Where the pool's futures complete; any loop will do.
    let eventLoop: any EventLoop

    public init(pool: any BlockingWorkPool, eventLoop: any EventLoop) {
        self.pool = pool
        self.eventLoop = eventLoop
    }

    /// nil when the pool no longer runs work (shutting down).
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
        try? await pool.run(on: eventLoop, work).get()
    }
}
