import Foundation
import NIOSSL

/// A server address: `nats://HOST:PORT` (plain, upgraded to TLS when the server requires it) or
/// `tls://HOST:PORT` (TLS required). The port defaults to 4222.
public struct NATSServerURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var requiresTLS: Bool

    public init(host: String, port: Int = 4222, requiresTLS: Bool = false) {
        self.host = host
        self.port = port
        self.requiresTLS = requiresTLS
    }

    public init(_ string: String) throws(NATSError) {
        var rest = Substring(string)
        var tls = false
        if let schemeEnd = rest.range(of: "://") {
            switch rest[..<schemeEnd.lowerBound].lowercased() {
            case "nats": tls = false
            case "tls": tls = true
            default: throw .invalidURL(string)
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        // Credentials do not belong in URLs: they would end up in logs.
        guard !rest.isEmpty, !rest.contains("@"), !rest.contains("/") else { throw .invalidURL(string) }
        var host = rest
        var port = 4222
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidURL(string) }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw .invalidURL(string) }
                port = p
            } else if !after.isEmpty { throw .invalidURL(string) }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw .invalidURL(string) }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw .invalidURL(string) }
        self.init(host: String(host), port: port, requiresTLS: tls)
    }

    public var description: String { "\(requiresTLS ? "tls" : "nats")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}

/// How the client proves who it is.
public enum NATSAuthentication: Sendable, Hashable {
    case none
    case userPassword(user: String, password: String)
    case token(String)
    /// A file holding a user nkey seed (`SU…`), alone or in a creds file.
    case nkeySeedFile(String)
    case nkeySeed(String)
}

/// TLS settings; `nil` in the configuration means TLS only when the server requires it, then with
/// the system's trust roots and full verification.
public struct NATSTLSConfiguration: Sendable {
    public var caFile: String?
    public var certificateFile: String?
    public var privateKeyFile: String?
    /// Check the server certificate's name against the host in the URL. Off only for tests with
    /// certificates that name nothing useful; the chain is verified either way.
    public var verifyHostname: Bool

    public init(caFile: String? = nil, certificateFile: String? = nil, privateKeyFile: String? = nil, verifyHostname: Bool = true) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.verifyHostname = verifyHostname
    }

    func makeContext() throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        if let caFile { config.trustRoots = .file(caFile) }
        if let certificateFile {
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
        }
        if let privateKeyFile { config.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)) }
        config.certificateVerification = verifyHostname ? .fullVerification : .noHostnameVerification
        return try NIOSSLContext(configuration: config)
    }
}

public struct NATSConfiguration: Sendable {
    public var servers: [NATSServerURL]
    public var authentication: NATSAuthentication
    /// Refuse a server whose INFO says it does not require authentication. On by default: a
    /// cluster transport that talks to an open server has lost its access control.
    public var requireAuthentication: Bool
    public var tls: NATSTLSConfiguration?
    /// Sent in CONNECT; shows in the server's connection list.
    public var name: String?

    public var connectTimeout: Duration
    public var pingInterval: Duration
    /// PINGs without a PONG after which the connection is considered stale and replaced.
    public var maxPingsOutstanding: Int
    /// nil: reconnect forever.
    public var maxReconnectAttempts: Int?
    public var reconnectWait: Duration
    public var reconnectWaitMax: Duration
    /// Learn servers from the INFO's `connect_urls` and try them when reconnecting.
    public var discoverServers: Bool

    /// Publishes waiting to be written while connected; beyond it `publish` throws
    /// `outboundBufferFull`.
    public var maxPendingBytes: Int
    /// Publishes kept while disconnected, sent after the reconnect; beyond it `publish` throws
    /// `reconnectBufferFull`. 0 makes every publish fail while disconnected.
    public var reconnectBufferSize: Int
    /// Default pending limits of a subscription consumed as an AsyncSequence.
    public var subscriptionPendingMessages: Int
    public var subscriptionPendingBytes: Int
    public var parserLimits: NATSParserLimits
    public var requestTimeout: Duration

    public init(servers: [NATSServerURL], authentication: NATSAuthentication = .none) {
        self.servers = servers
        self.authentication = authentication
        requireAuthentication = true
        tls = nil
        name = nil
        connectTimeout = .seconds(5)
        pingInterval = .seconds(30)
        maxPingsOutstanding = 2
        maxReconnectAttempts = nil
        reconnectWait = .milliseconds(250)
        reconnectWaitMax = .seconds(5)
        discoverServers = true
        maxPendingBytes = 8 * 1024 * 1024
        reconnectBufferSize = 8 * 1024 * 1024
        subscriptionPendingMessages = 65_536
        subscriptionPendingBytes = 64 * 1024 * 1024
        parserLimits = NATSParserLimits()
        requestTimeout = .seconds(5)
    }

    public init(urls: [String], authentication: NATSAuthentication = .none) throws(NATSError) {
        var servers: [NATSServerURL] = []
        for url in urls { servers.append(try NATSServerURL(url)) }
        self.init(servers: servers, authentication: authentication)
    }
}
