import BastionSecurity
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// Limits of the transport layer.
public enum TransportDefaults {
    /// Largest WebSocket frame accepted. Above the default MQTT maximum packet size (256 KiB) plus
    /// framing, so one packet always fits in one frame; larger packets may still span frames.
    public static let webSocketMaxFrameSize = 1 << 20
}

/// Installs everything between an accepted socket and the MQTT byte stream, then calls `installMQTT`
/// with what was learned about the connection. Call it from the child channel initializer (on the
/// channel's event loop); the returned future completes once the first handlers are in place, not
/// when the handshake is done.
///
/// - `mqtt://`: `installMQTT` at once.
/// - `mqtts://` and `wss://`: TLS (with `handshakeTimeout` covering the handshake and any WebSocket
///   upgrade), then by ALPN: `mqtt` → raw MQTT, `http/1.1` → WebSocket; without ALPN the listener's
///   scheme decides. Rejected handshakes are logged with the reason and the remote address.
/// - `ws://`: HTTP/1.1 upgrade to WebSocket at `wsPath` with subprotocol `mqtt`, then MQTT over
///   binary frames. For `mqtt(s)://` listeners `wsPath` is where ALPN-switched WebSocket clients go;
///   passing the URL's "/" there means the default `/mqtt`.
///
/// After `installMQTT` the channel's inbound is raw MQTT `ByteBuffer`s and its outbound accepts
/// `ByteBuffer`s, whatever the transport.
public func installTransport(
    channel: any Channel,
    listener: ListenerURL,
    tls: TLSContextHolder?,
    wsPath: String,
    webSocketOrigins: WebSocketOrigins = .any,
    logger: Logger,
    handshakeTimeout: TimeAmount,
    listenerName: String? = nil,
    webSocketMaxFrameSize: Int = TransportDefaults.webSocketMaxFrameSize,
    remoteAddress: SocketAddress? = nil,
    onRejection: (@Sendable (TransportRejection) -> Void)? = nil,
    installMQTT: @escaping @Sendable (any Channel, TransportInfo) -> EventLoopFuture<Void>
) -> EventLoopFuture<Void> {
    // A raw-MQTT listener's URL path is "/"; WebSocket clients reaching it through ALPN use /mqtt.
    let path = !listener.scheme.isWebSocket && wsPath == "/" ? ListenerURLParser.defaultWebSocketPath : wsPath
    let setup = TransportSetup(
        listener: listener,
        listenerName: listenerName ?? listener.description,
        tls: tls,
        wsPath: path,
        webSocketOrigins: webSocketOrigins,
        logger: logger,
        handshakeTimeout: handshakeTimeout,
        webSocketMaxFrameSize: webSocketMaxFrameSize,
        remoteAddress: remoteAddress,
        onRejection: onRejection,
        installMQTT: installMQTT
    )
    if channel.eventLoop.inEventLoop {
        return setup.install(on: channel)
    }
    return channel.eventLoop.flatSubmit { setup.install(on: channel) }
}

/// The immutable part of a listener's transport setup, shared by its connections.
struct TransportSetup: Sendable {
    var listener: ListenerURL
    var listenerName: String
    var tls: TLSContextHolder?
    var wsPath: String
    var webSocketOrigins: WebSocketOrigins
    var logger: Logger
    var handshakeTimeout: TimeAmount
    var webSocketMaxFrameSize: Int
    /// The client's address when a PROXY header named it (else the socket's).
    var remoteAddress: SocketAddress?
    var onRejection: (@Sendable (TransportRejection) -> Void)?
    var installMQTT: @Sendable (any Channel, TransportInfo) -> EventLoopFuture<Void>

    /// Reports a refusal to the optional hook (the log line is written by the caller).
    func report(_ remote: String, _ reason: String, _ detail: String, certificate: Bool = false) {
        onRejection?(TransportRejection(
            listenerName: listenerName, remoteAddress: remote, reason: reason, detail: detail, isCertificateProblem: certificate))
    }

    func install(on channel: any Channel) -> EventLoopFuture<Void> {
        var logger = self.logger
        logger[metadataKey: "listener"] = "\(listenerName)"
        let remote = remoteAddress?.bastionDescription ?? remoteAddressString(of: channel)
        logger[metadataKey: "remote"] = "\(remote)"
        let info = TransportInfo(
            listenerName: listenerName,
            listener: listener,
            transport: listener.scheme.isWebSocket ? .ws : .mqtt,
            remoteAddress: remote
        )
        do {
            switch listener.scheme {
            case .mqtt:
                return installMQTT(channel, info)
            case .ws:
                let deadline = SetupDeadline(channel: channel, timeout: handshakeTimeout, logger: logger, phase: "WebSocket upgrade", setup: self)
                try installWebSocket(on: channel, info: info, deadline: deadline, logger: logger)
                return channel.eventLoop.makeSucceededVoidFuture()
            case .mqtts, .wss:
                guard let tls else {
                    logger.error("TLS listener without TLS material; closing connection")
                    return channel.eventLoop.makeFailedFuture(TransportSetupError.missingTLS(listenerName))
                }
                try installTLS(on: channel, holder: tls, info: info, logger: logger)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        } catch {
            logger.error("cannot set up connection: \(error)")
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    // MARK: TLS

    private func installTLS(on channel: any Channel, holder: TLSContextHolder, info: TransportInfo, logger: Logger) throws {
        let snapshot = holder.current
        let state = TLSConnectionState()
        let deadline = SetupDeadline(channel: channel, timeout: handshakeTimeout, logger: logger, phase: "TLS handshake", setup: self)
        let sslHandler: NIOSSLServerHandler
        if let verifier = snapshot.verifier {
            sslHandler = NIOSSLServerHandler(
                context: snapshot.context,
                customVerificationCallbackWithMetadata: TLSClientVerification.callback(
                    verifier: verifier,
                    state: state,
                    intermediates: snapshot.intermediates,
                    clock: holder.clock
                )
            )
        } else {
            sslHandler = NIOSSLServerHandler(context: snapshot.context)
        }
        let settings = snapshot.settings
        let handshakeHandler = TLSHandshakeHandler(
            onHandshake: { context, negotiated in
                self.handshakeCompleted(
                    channel: context.channel,
                    negotiated: negotiated,
                    state: state,
                    snapshot: snapshot,
                    clock: holder.clock,
                    info: info,
                    deadline: deadline,
                    logger: logger
                )
            },
            onFailure: { error in
                deadline.cancel()
                let failure = TLSHandshakeFailure.classify(
                    error,
                    rejection: state.rejection,
                    minimumVersion: settings.minimumVersion
                )
                let message: Logger.Message = "TLS handshake rejected: \(failure)"
                let metadata: Logger.Metadata = ["reason": "\(failure.code)"]
                if failure.isCertificateProblem {
                    logger.warning(message, metadata: metadata)
                } else {
                    logger.notice(message, metadata: metadata)
                }
                self.report(info.remoteAddress, failure.code, failure.detail, certificate: failure.isCertificateProblem)
            },
            onClosedEarly: {
                logger.debug("connection closed before the TLS handshake completed")
            }
        )
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(TLSServerHelloObserver(onCipherSuite: { state.cipherSuite = $0 }))
        try sync.addHandler(sslHandler)
        try sync.addHandler(handshakeHandler)
    }

    /// A handshake that did not pass through our verifier although the listener verifies clients is
    /// a resumed session (BoringSSL skips verification then) or carried no certificate. A resumed
    /// session's certificate is verified again with the current CA, CRLs and clock, so revocation,
    /// expiry and the identity hold for resumed sessions too.
    private func handshakeCompleted(
        channel: any Channel,
        negotiated: String?,
        state: TLSConnectionState,
        snapshot: TLSContextHolder.Snapshot,
        clock: @escaping @Sendable () -> Date,
        info: TransportInfo,
        deadline: SetupDeadline,
        logger: Logger
    ) -> EventLoopFuture<Void> {
        let settings = snapshot.settings
        guard let verifier = snapshot.verifier, state.clientCertificate == nil else {
            return route(channel: channel, negotiated: negotiated, state: state, settings: settings, info: info,
                         deadline: deadline, logger: logger)
        }
        let peer = (try? channel.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil
        guard let peer, let leaf = try? CertificateDER.parse(peer.toDERBytes()) else {
            if settings.requireCertificate {
                state.rejection = .missing
                return channel.eventLoop.makeFailedFuture(ClientCertificateRejection.missing)
            }
            return route(channel: channel, negotiated: negotiated, state: state, settings: settings, info: info,
                         deadline: deadline, logger: logger)
        }
        let presented = [leaf] + snapshot.intermediates.all
        return channel.eventLoop.makeFutureWithTask {
            await verifier.verify(presented: presented, at: clock())
        }
        .assumeIsolated()
        .flatMap { outcome in
            switch outcome {
            case .success(let certificate):
                logger.debug("resumed TLS session: client certificate verified again")
                state.clientCertificate = certificate
                return self.route(channel: channel, negotiated: negotiated, state: state, settings: settings,
                                  info: info, deadline: deadline, logger: logger)
            case .failure(let rejection):
                state.rejection = rejection
                return channel.eventLoop.makeFailedFuture(rejection)
            }
        }
        .nonisolated()
    }

    private func route(
        channel: any Channel,
        negotiated: String?,
        state: TLSConnectionState,
        settings: TLSServerSettings,
        info: TransportInfo,
        deadline: SetupDeadline,
        logger: Logger
    ) -> EventLoopFuture<Void> {
        var info = info
        info.alpn = negotiated
        info.cipherSuite = state.cipherSuite.map(TLSServerHello.name(of:))
        info.tlsVersion = (try? channel.pipeline.syncOperations.nioSSL_tlsVersion()).flatMap { $0 }.map(Self.name(of:))
        info.clientCertificate = state.clientCertificate
        info.certificateRequirements = settings.clientCertificateRequirements
        let useWebSocket: Bool
        switch negotiated {
        case TLSContextHolder.ALPN.mqtt?: useWebSocket = false
        case TLSContextHolder.ALPN.http1?: useWebSocket = true
        default: useWebSocket = listener.scheme == .wss
        }
        logger.debug(
            "TLS handshake completed",
            metadata: [
                "tls": "\(info.tlsVersion ?? "?")",
                "cipher": "\(info.cipherSuite ?? "?")",
                "alpn": "\(negotiated ?? "-")",
                "identity": "\(info.certificateIdentity ?? "-")",
            ]
        )
        if useWebSocket {
            info.transport = .wss
            deadline.cancel()
            let upgradeDeadline = SetupDeadline(
                channel: channel,
                timeout: handshakeTimeout,
                logger: logger,
                phase: "WebSocket upgrade",
                setup: self
            )
            do {
                try installWebSocket(on: channel, info: info, deadline: upgradeDeadline, logger: logger)
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        info.transport = .mqtts
        deadline.cancel()
        return installMQTT(channel, info)
    }

    static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv1: return "TLSv1.0"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }

    // MARK: WebSocket

    private func installWebSocket(on channel: any Channel, info: TransportInfo, deadline: SetupDeadline, logger: Logger) throws {
        let path = wsPath
        let origins = webSocketOrigins
        let installMQTT = self.installMQTT
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: webSocketMaxFrameSize,
            automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                switch WebSocketHandshakePolicy.decide(uri: head.uri, headers: head.headers, path: path, origins: origins) {
                case .accept(let subprotocol):
                    if origins == .any, let origin = head.headers.first(name: "origin") {
                        logger.info("MQTT WebSocket opened by a browser page", metadata: ["origin": "\(origin)"])
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol)
                    return channel.eventLoop.makeSucceededFuture(headers)
                case .refuse:
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
            },
            upgradePipelineHandler: { channel, _ in
                deadline.cancel()
                do {
                    let sync = channel.pipeline.syncOperations
                    let refusal = try sync.handler(type: WebSocketRefusalHandler.self)
                    sync.removeHandler(refusal, promise: nil)
                    try sync.addHandler(
                        WebSocketMQTTAdapter(onRefusal: { reason in
                            logger.notice("WebSocket connection closed: \(reason)")
                        })
                    )
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return installMQTT(channel, info)
            }
        )
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }),
            withErrorHandling: true
        )
        let setup = self
        let remote = info.remoteAddress
        try sync.addHandler(
            WebSocketRefusalHandler(path: path, origins: webSocketOrigins, logger: logger) { status, reason in
                setup.report(remote, "websocket_refused", "\(status.code): \(reason)")
            }
        )
    }
}

enum TransportSetupError: Error, CustomStringConvertible {
    case missingTLS(String)

    var description: String {
        switch self {
        case .missingTLS(let name): return "listener \(name) is TLS but has no TLS material"
        }
    }
}

/// Closes a connection that has not finished its TLS handshake or WebSocket upgrade in time, so a
/// stalled client cannot hold a socket. Cancelled once MQTT takes over (MQTT has its own CONNECT
/// timeout) or when the connection closes.
struct SetupDeadline: Sendable {
    private let scheduled: Scheduled<Void>

    init(channel: any Channel, timeout: TimeAmount, logger: Logger, phase: String, setup: TransportSetup) {
        let remote = setup.remoteAddress?.bastionDescription ?? remoteAddressString(of: channel)
        scheduled = channel.eventLoop.scheduleTask(in: timeout) {
            let detail = "\(phase) timed out after \(Self.seconds(timeout)) s"
            logger.notice("\(detail); closing connection", metadata: ["reason": "handshake_timeout"])
            setup.report(remote, "handshake_timeout", detail)
            channel.close(promise: nil)
        }
        let scheduled = self.scheduled
        channel.closeFuture.whenComplete { _ in scheduled.cancel() }
    }

    func cancel() { scheduled.cancel() }

    private static func seconds(_ amount: TimeAmount) -> String {
        let value = Double(amount.nanoseconds) / 1_000_000_000
        return value == value.rounded() ? String(Int(value)) : String(value)
    }
}
