import BastionAdmin
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTP/1.1 client for the admin API (`bastion ban`, tests): one request per connection,
/// over TLS for https:// (the certificate and host name verified against `caFile`, or the
/// system's roots).
public struct AdminClient: Sendable {
    public var host: String
    public var port: Int
    public var token: String?
    public var https: Bool
    /// PEM bundle trusted for the console's certificate (e.g. DATA/tls/ca.pem).
    public var caFile: String?
    public var timeout: Duration = .seconds(10)

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public enum Method: Sendable {
        case get, post, delete

        var nio: HTTPMethod {
            switch self {
            case .get: .GET
            case .post: .POST
            case .delete: .DELETE
            }
        }
    }

    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String?
        public var body: String
    }

    /// `url` is the admin listener, e.g. https://127.0.0.1:9443.
    public init(url: String, token: String? = nil, caFile: String? = nil) throws(Failure) {
        guard let (scheme, host, port) = AdminSettings.parseListen(url), port > 0 else {
            throw Failure(description: "'\(url)' is not an admin URL like \(AdminSettings.defaultListen)")
        }
        self.init(host: host, port: port, token: token, https: scheme == .https, caFile: caFile)
    }

    public init(host: String, port: Int, token: String? = nil, https: Bool = false, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.token = token
        self.https = https
        self.caFile = caFile
    }

    private var origin: String { "\(https ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    private func tlsContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    public func request(_ method: Method, _ path: String, json body: Data? = nil) async throws -> Reply {
        let timeout = self.timeout
        return try await withThrowingTaskGroup(of: Reply?.self) { group in
            group.addTask { try await self.exchange(method, path, body: body) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let reply = first else {
                throw Failure(description: "no answer from \(origin) within \(timeout)")
            }
            return reply
        }
    }

    private func exchange(_ method: Method, _ path: String, body: Data?) async throws -> Reply {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let tls: NIOSSLContext?
        do {
            tls = https ? try tlsContext() : nil
        } catch {
            throw Failure(description: "cannot read the CA file \(caFile ?? "(system roots)"): \(error)")
        }
        // Host names go into SNI and are verified; for an IP literal NIOSSL checks the IP SANs.
        let serverName = IPAddressText.isIP(host) ? nil : host
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw Failure(description: "cannot connect to the admin listener \(origin): \(error)")
        }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method.nio, uri: path)
            head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
            if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
            if let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))

            var status = 0
            var contentType: String?
            var received = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)
                    contentType = response.headers.first(name: "Content-Type")
                case .body(var chunk):
                    guard received.readableBytes + chunk.readableBytes <= 64 * 1024 * 1024 else {
                        throw Failure(description: "admin reply too large")
                    }
                    received.writeBuffer(&chunk)
                case .end:
                    return Reply(status: status, contentType: contentType, body: String(buffer: received))
                }
            }
            throw Failure(description: "the admin listener closed the connection before answering")
        }
    }

    // MARK: Ban API

    public func request(_ method: Method, _ path: String, jsonText: String) async throws -> Reply {
        try await request(method, path, json: Data(jsonText.utf8))
    }

    public func listBans() async throws -> [BanAPI.Ban] {
        let reply = try await request(.get, "/bans")
        try Self.check(reply, expect: [200])
        return try JSONDecoder().decode([BanAPI.Ban].self, from: Data(reply.body.utf8))
    }

    public func addBan(_ ban: BanAPI.BanRequest) async throws -> BanAPI.Ban {
        let reply = try await request(.post, "/bans", json: try JSONEncoder().encode(ban))
        try Self.check(reply, expect: [201])
        return try JSONDecoder().decode(BanAPI.Ban.self, from: Data(reply.body.utf8))
    }

    /// `kind` is ip, cidr, user or client_id.
    public func removeBan(kind: String, value: String) async throws {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+/?#")
        let encoded = value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
        let reply = try await request(.delete, "/bans?\(kind)=\(encoded)")
        try Self.check(reply, expect: [200])
    }

    static func check(_ reply: Reply, expect: Set<Int>) throws(Failure) {
        guard expect.contains(reply.status) else {
            let message = (try? JSONDecoder().decode(BanAPIError.self, from: Data(reply.body.utf8)))?.error
                ?? reply.body.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "admin API answered \(reply.status): \(message)")
        }
    }
}

enum IPAddressText {
    static func isIP(_ host: String) -> Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }
}
