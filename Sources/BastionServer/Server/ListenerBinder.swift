import BastionCore
import BastionSecurity
import Logging
import NIOCore
import NIOPosix

/// Binds one listener. Every accepted socket passes the abuse gate first (bans, connection limits,
/// before any TLS or KDF work), then the transport (TLS, WebSocket, ALPN), then gets the MQTT
/// connection handler. On a listener with `proxy_protocol` the PROXY header comes first, and the
/// address it names is the one the gate, bans, logs and the audit trail see.
struct ListenerBinder {
    let broker: Broker
    let settings: ListenerSettings
    let index: Int
    let tls: TLSContextHolder?
    let logger: Logger

    func bind(group: any EventLoopGroup) async throws -> any Channel {
        let binder = self
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Small until CONNECT is accepted (see `MQTTConnectionHandler.connectedWaterMark`): an
            // unauthenticated client that does not read its replies stops being read sooner.
            .childChannelOption(.writeBufferWaterMark, value: MQTTConnectionHandler.preConnectWaterMark)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // NIO keeps a connection's last receive buffer for reuse: start small so an idle device
            // costs little; the buffer grows (to 64 KiB) for clients that send a lot.
            .childChannelOption(.recvAllocator, value: CompactRecvBufferAllocator(minimum: 64, initial: 64, maximum: 64 * 1024))
            .childChannelInitializer { channel in
                let acceptedAt = NIODeadline.now()
                let socketRemote = channel.remoteAddress
                guard let proxy = binder.settings.proxyProtocol else {
                    return binder.setUp(channel, remote: socketRemote, acceptedAt: acceptedAt, viaProxy: false)
                }
                let trusted = IPAddress(socketRemote).map(proxy.trusts) ?? false
                let protection = binder.broker.protection
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProxyProtocolHandler(
                        trustedSource: trusted, timeout: binder.broker.connectTimeout, logger: binder.logger,
                        onRefusal: { _ in protection?.preConnectViolation(remote: socketRemote) },
                        proceed: { channel, real in
                            binder.setUp(channel, remote: real ?? socketRemote, acceptedAt: acceptedAt, viaProxy: true)
                        }))
                }
            }
        return try await bootstrap.bind(host: settings.url.host, port: settings.url.port).get()
    }

    /// Admission, transport and the MQTT handler for a connection from `remote`.
    private func setUp(_ channel: any Channel, remote: SocketAddress?, acceptedAt: NIODeadline, viaProxy: Bool) -> EventLoopFuture<Void> {
        let broker = self.broker
        let settings = self.settings
        let index = self.index
        let listenerName = settings.url.description
        // A plain listener installs the MQTT handler right here, and the handler reports the
        // close; other transports may close before it exists.
        let handlerReportsClose = settings.url.scheme == .mqtt && !viaProxy
        if let protection = broker.protection {
            guard protection.admit(remote: remote, listener: listenerName, listenerIndex: index) else {
                return channel.close()
            }
            if !handlerReportsClose {
                channel.closeFuture.whenComplete { _ in protection.closed(remote: remote) }
            }
        }
        let frameLimit = max(TransportDefaults.webSocketMaxFrameSize, broker.limits.maximumPacketSize + 16)
        return installTransport(
            channel: channel, listener: settings.url, tls: tls, wsPath: settings.url.path,
            webSocketOrigins: settings.webSocketOrigins, logger: logger,
            handshakeTimeout: tls?.settings.handshakeTimeout ?? broker.connectTimeout, listenerName: listenerName,
            webSocketMaxFrameSize: frameLimit, remoteAddress: viaProxy ? remote : nil,
            onRejection: { rejection in
                guard let protection = broker.protection else { return }
                guard rejection.isCertificateProblem else {
                    // A failed or stalled TLS handshake or WebSocket upgrade.
                    return protection.preConnectViolation(remote: remote)
                }
                protection.authenticationFailed(AuditEvent.AuthFailure(
                    peer: AuditPeer(listener: listenerName, ip: remote?.ipAddress, port: remote?.port),
                    clientID: nil, username: nil, reason: .certificateRejected), weight: .costly)
            },
            installMQTT: { channel, transport in
                var info = ConnectionInfo(
                    listener: listenerName, remoteAddress: Self.describe(remote), allowAnonymous: settings.allowAnonymous)
                info.setTLS(
                    version: transport.tlsVersion, cipherSuite: transport.cipherSuite,
                    certificateIdentity: transport.certificateIdentity, certificateSerial: transport.certificateSerial,
                    certificateFingerprint: transport.certificateFingerprint)
                info.requirePassword = transport.certificateRequirements.requirePassword
                info.requireClientIDMatch = transport.certificateRequirements.requireClientIDMatch
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MQTTConnectionHandler(
                        broker: broker, eventLoop: channel.eventLoop, info: info, listenerIndex: index,
                        remoteAddress: remote, acceptedAt: acceptedAt, reportsCloseToProtection: handlerReportsClose))
                }
            })
    }

    /// "127.0.0.1:50000" / "[::1]:50000", as operators read addresses in logs.
    static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress else { return "unknown" }
        let port = address.port.map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
