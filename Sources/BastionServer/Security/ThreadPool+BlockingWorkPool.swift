import BastionCore
import NIOCore
import NIOPosix

/// Key derivation and blocking backend calls run on the broker's bounded authentication pool.
extension NIOThreadPool: BlockingWorkPool {
    public func run<T: Sendable>(on eventLoop: any EventLoop, _ work: @escaping @Sendable () -> T) -> EventLoopFuture<T> {
        runIfActive(eventLoop: eventLoop, work)
    }
}
