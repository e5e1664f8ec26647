import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A `http` backend's configuration.
public struct WebhookSettings: Sendable, Hashable {
    public var url: String
    public var timeout: Duration
    /// Also ask about clients authenticated by a certificate alone.
    public var certificates: Bool
    /// PEM CAs for an https:// server; nil: the system's roots.
    public var caFile: String?
    public var maximumConnections: Int

    public init(url: String, timeout: Duration = .seconds(2), certificates: Bool = false, caFile: String? = nil, maximumConnections: Int = 16) {
        self.url = url
        self.timeout = timeout
        self.certificates = certificates
        self.caFile = caFile
        self.maximumConnections = maximumConnections
    }
}

/// `type: http`: POSTs the credentials as JSON to a webhook and reads allow / deny / ignore and
/// an optional ACL from its JSON answer (docs/auth-backends.md). Redirects are not followed
/// (they would carry the password elsewhere); a status other than 200, 401 or 403, a body
/// over 64 KiB, garbage or a timeout is `unavailable`.
public final class WebhookBackend: IdentityBackend {
    public let name: String
    let settings: WebhookSettings
    let client: HTTPClient
    let logger: Logger

    public init(name: String, settings: WebhookSettings, eventLoopGroup: any EventLoopGroup, logger: Logger) throws(WebhookSettingsError) {
        self.name = name
        self.settings = settings
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw WebhookSettingsError(key: "ca_file", "cannot read \(caFile): \(error)")
            }
        }
        let timeout = TimeAmount(settings.timeout)
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: timeout, read: timeout))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: settings.maximumConnections)
        configuration.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }

    public func applies(to request: AuthenticationRequest) -> Bool {
        request.isCertificateOnly ? settings.certificates : request.password != nil || request.username != nil
    }

    public func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        var http = HTTPClientRequest(url: settings.url)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        http.headers.add(name: "Accept", value: "application/json")
        let body: Data
        do {
            body = try JSONEncoder().encode(WebhookRequest(request))
        } catch {
            return .unavailable("cannot encode the request: \(error)")
        }
        http.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(http, timeout: TimeAmount(settings.timeout), logger: logger)
            let bytes = try await response.body.collect(upTo: WebhookResponse.maximumBodySize)
            return WebhookResponse.decision(
                status: Int(response.status.code), body: Array(bytes.readableBytesView), request: request, source: name)
        } catch {
            return .unavailable("webhook: \(error)")
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}

public struct WebhookSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
