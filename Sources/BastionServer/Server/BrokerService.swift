import BastionCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The broker as a `Service`: binds the listeners, runs until graceful shutdown, then stops
/// accepting, tells 5.0 clients why (0x8B), closes every connection and releases the loops.
public final class BrokerService: Service {
    let settings: BrokerSettings
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let broker: Broker

    /// Raised (and thrown from `run`) when a listener cannot be bound: a runtime failure, exit 1.
    public struct BindFailure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(settings: BrokerSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.broker = Broker(group: group, limits: settings.limits, logger: logger)
    }

    public func run() async throws {
        var channels: [any Channel] = []
        for listener in settings.listeners {
            let binder = ListenerBinder(
                broker: broker, settings: listener, connectTimeout: .milliseconds(Int64(settings.connectTimeout * 1000)), logger: logger)
            do {
                channels.append(try await binder.bind(group: group))
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw BindFailure(description: "cannot listen on \(listener.url): \(error)")
            }
            logger.notice("listening", metadata: [
                "listener": "\(listener.url)", "allow_anonymous": "\(listener.allowAnonymous)",
            ])
        }
        let reaper = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { [broker] task in
            broker.reap(on: broker.group.next())
        }
        logger.notice("bastion started", metadata: ["event_loops": "\(System.coreCount)"])

        try? await gracefulShutdown()

        logger.notice("shutting down")
        reaper.cancel()
        for channel in channels { try? await channel.close() }
        try? await broker.forEachConnection { $0.shutdown() }.get()
        // Give the DISCONNECT packets a moment to leave before the loops stop.
        try? await Task.sleep(for: .milliseconds(100))
        try? await group.shutdownGracefully()
        logger.notice("bastion stopped")
    }
}
