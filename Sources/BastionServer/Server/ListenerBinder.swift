import BastionCore
import Logging
import NIOCore
import NIOPosix

/// Binds one listener and installs the MQTT handler on every accepted connection.
struct ListenerBinder {
    let broker: Broker
    let settings: ListenerSettings
    let index: Int
    let connectTimeout: TimeAmount
    let logger: Logger

    func bind(group: any EventLoopGroup) async throws -> any Channel {
        let broker = self.broker
        let settings = self.settings
        let connectTimeout = self.connectTimeout
        let logger = self.logger
        let listenerName = settings.url.description
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [index] channel in
                let acceptedAt = NIODeadline.now()
                let remote = channel.remoteAddress
                // Banned sources and connection floods are refused before any TLS or KDF work.
                if let protection = broker.protection {
                    guard protection.admit(remote: remote, listener: listenerName, listenerIndex: index) else {
                        return channel.close()
                    }
                    let started = ContinuousClock.now
                    channel.closeFuture.whenComplete { _ in
                        protection.closed(remote: remote, after: ContinuousClock.now - started)
                    }
                }
                let info = ConnectionInfo(
                    listener: listenerName, remoteAddress: Self.describe(remote), allowAnonymous: settings.allowAnonymous)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MQTTConnectionHandler(
                        broker: broker, info: info, connectTimeout: connectTimeout, logger: logger, listenerIndex: index,
                        remoteAddress: remote, acceptedAt: acceptedAt))
                }
            }
        return try await bootstrap.bind(host: settings.url.host, port: settings.url.port).get()
    }

    /// "127.0.0.1:50000" / "[::1]:50000", as operators read addresses in logs.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "unknown" }
        let port = address.port.map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
