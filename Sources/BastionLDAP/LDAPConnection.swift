import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to a directory server, with an async API. One operation runs at a time; a
/// second one started while the first is in flight fails with `LDAPError.invalidRequest`.
///
/// Every operation is bounded by `operationTimeout`; when it passes, the operation fails with
/// `LDAPError.timedOut` and the connection is closed (a late answer could not be matched to
/// anything safely). Any protocol violation by the server also closes the connection.
public final class LDAPConnection: Sendable {
    public let url: LDAPURL
    public let operationTimeout: Duration
    private let channel: any Channel
    private let closeReason: LDAPCloseReason
    private let logger: Logger

    private init(url: LDAPURL, channel: any Channel, operationTimeout: Duration, closeReason: LDAPCloseReason, logger: Logger) {
        self.url = url
        self.channel = channel
        self.operationTimeout = operationTimeout
        self.closeReason = closeReason
        self.logger = logger
    }

    /// Opens a TCP connection, with TLS from the first byte for `ldaps://`.
    ///
    /// - Parameters:
    ///   - tls: the client TLS configuration for `ldaps://` (nil: system trust roots, full
    ///     verification). Must be nil for `ldap://`, which upgrades with `startTLS` instead.
    ///   - connectTimeout: bounds name resolution and the TCP connect.
    ///   - maximumMessageSize: largest message accepted from the server, refused from its header.
    ///
    /// For `ldaps://` the handshake runs when the first operation is sent; a handshake failure
    /// fails that operation with `LDAPError.tlsFailure`.
    public static func connect(
        to url: LDAPURL,
        tls: TLSConfiguration? = nil,
        connectTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(10),
        maximumMessageSize: Int = LDAPMessageDecoder.defaultMaximumMessageSize,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "bastion.ldap")
    ) async throws(LDAPError) -> LDAPConnection {
        guard connectTimeout > .zero, operationTimeout > .zero else {
            throw .invalidRequest("timeouts must be positive")
        }
        var tlsSetup: LDAPRequest.TLSSetup?
        switch url.scheme {
        case .ldaps:
            tlsSetup = try makeTLSSetup(tls ?? .makeClientConfiguration(), serverHostname: nil, url: url)
        case .ldap:
            guard tls == nil else {
                throw .invalidRequest("a TLS configuration needs an ldaps:// URL; use startTLS for ldap://")
            }
        }
        let closeReason = LDAPCloseReason()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [tlsSetup] channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    if let tlsSetup {
                        try operations.addHandler(NIOSSLClientHandler(context: tlsSetup.context, serverHostname: tlsSetup.serverHostname))
                    }
                    try operations.addHandler(LDAPChannelHandler(maximumMessageSize: maximumMessageSize, closeReason: closeReason, logger: logger))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        } catch let error as ChannelError {
            if case .connectTimeout = error { throw .timedOut(operation: "connect to \(url)", after: connectTimeout) }
            throw .connectFailed("\(url): \(error)")
        } catch {
            throw .connectFailed("\(url): \(error)")
        }
        logger.debug("LDAP connected", metadata: ["url": "\(url)"])
        return LDAPConnection(url: url, channel: channel, operationTimeout: operationTimeout, closeReason: closeReason, logger: logger)
    }

    /// Upgrades an `ldap://` connection with the StartTLS operation (RFC 4511 §4.14, RFC 4513
    /// §3): the TLS handler goes in front of the LDAP handler right after the server agrees.
    /// `serverHostname` is verified against the certificate and sent as SNI; nil uses the URL's
    /// host (an IP address is verified against the certificate's IP SANs and not sent as SNI).
    public func startTLS(configuration: TLSConfiguration, serverHostname: String? = nil) async throws(LDAPError) {
        let setup = try Self.makeTLSSetup(configuration, serverHostname: serverHostname, url: url)
        _ = try await run(.startTLS, tls: setup)
    }

    /// A simple bind (RFC 4511 §4.2). Returns the server's result whatever its code (check
    /// `isSuccess`, `.invalidCredentials`); throws only when no result arrived.
    ///
    /// An empty password with a non-empty DN is refused locally: the server would treat it as an
    /// unauthenticated bind and answer success without checking anything (RFC 4513 §5.1.2).
    public func simpleBind(dn: String, password: String) async throws(LDAPError) -> LDAPResult {
        guard !password.isEmpty || dn.isEmpty else {
            throw .invalidRequest("an empty password with a DN is an unauthenticated bind; refused")
        }
        let response = try await run(.bind(LDAPBindRequest(name: dn, password: Array(password.utf8))))
        guard case .bind(let result) = response else { throw .protocolError("unexpected answer to bind") }
        return result
    }

    /// Searches and collects every entry until SearchResultDone. References are skipped. A result
    /// other than success throws `LDAPError.result`; exceeding `limits` throws
    /// `LDAPError.limitExceeded` and closes the connection.
    public func search(
        base: String,
        scope: LDAPSearchRequest.Scope = .wholeSubtree,
        derefAliases: LDAPSearchRequest.DerefAliases = .never,
        sizeLimit: Int = 0,
        timeLimit: Int = 0,
        typesOnly: Bool = false,
        filter: LDAPFilter,
        attributes: [String] = [],
        limits: LDAPSearchLimits = LDAPSearchLimits()
    ) async throws(LDAPError) -> [LDAPEntry] {
        let request = LDAPSearchRequest(
            baseObject: base, scope: scope, derefAliases: derefAliases, sizeLimit: sizeLimit,
            timeLimit: timeLimit, typesOnly: typesOnly, filter: filter, attributes: attributes
        )
        let response = try await run(.search(request, limits))
        guard case .search(let entries) = response else { throw .protocolError("unexpected answer to search") }
        return entries
    }

    /// Sends UnbindRequest and closes the connection. Never throws: the connection ends either way.
    public func unbind() async {
        do {
            _ = try await run(.unbind)
        } catch {
            logger.debug("LDAP unbind failed", metadata: ["error": "\(error)"])
        }
        await close()
    }

    /// Closes the connection; an operation in flight fails with `LDAPError.connectionClosed`.
    public func close() async {
        closeReason.record(.connectionClosed("closed by the client"))
        try? await channel.close()
    }

    private func run(_ operation: LDAPOperation, tls: LDAPRequest.TLSSetup? = nil) async throws(LDAPError) -> LDAPOperationResponse {
        let promise = channel.eventLoop.makePromise(of: LDAPOperationResponse.self)
        let request = LDAPRequest(operation: operation, tls: tls, timeout: operationTimeout, promise: promise)
        // The write fails only when the handler never saw the request (channel already closed).
        channel.writeAndFlush(request).whenFailure { [closeReason] error in
            promise.fail(closeReason.value ?? .connectionClosed("\(error)"))
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            throw LDAPChannelHandler.classify(error)
        }
    }

    /// Builds the TLS context off the event loop (it may read certificate files).
    private static func makeTLSSetup(_ configuration: TLSConfiguration, serverHostname: String?, url: LDAPURL) throws(LDAPError) -> LDAPRequest.TLSSetup {
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw .tlsFailure("TLS configuration: \(error)")
        }
        let name = serverHostname ?? (url.hostIsIPAddress ? nil : url.host)
        return LDAPRequest.TLSSetup(context: context, serverHostname: name)
    }
}
