import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import BastionAdmin

/// Every API route × every kind of caller, the monitoring routes, and the request checks.
@Suite struct AuthorizationTests {
    enum Caller: CaseIterable, CustomStringConvertible {
        case anonymous, badToken, viewer, `operator`, admin

        var role: AdminRole? {
            switch self {
            case .anonymous, .badToken: nil
            case .viewer: .viewer
            case .operator: .operator
            case .admin: .admin
            }
        }

        var description: String { "\(self.role?.rawValue ?? (self == .anonymous ? "anonymous" : "bad token"))" }
    }

    /// A body each POST route accepts.
    static func body(for path: String) -> String {
        switch path {
        case "/api/v1/clients/kick": #"{"client_id":"sensor-1"}"#
        case "/api/v1/bans": #"{"ip":"192.0.2.7","duration_seconds":60}"#
        case "/api/v1/users": #"{"name":"new-user","role":"viewer"}"#
        case "/api/v1/users/{name}/role": #"{"role":"viewer"}"#
        case "/api/v1/tokens": #"{"name":"ci","role":"viewer","expires_days":1}"#
        default: "{}"
        }
    }

    static func concrete(_ path: String) -> String {
        path.replacingOccurrences(of: "{name}", with: "nobody").replacingOccurrences(of: "{id}", with: "none")
            + (path == "/api/v1/acl/check" ? "?topic=plant/a&action=publish&client_id=c" : "")
            + (path == "/api/v1/retained" ? "?topic=plant/line1/status&filter=%23" : "")
            + (path == "/api/v1/bans" ? "?ip=192.0.2.99" : "")
    }

    @Test(arguments: Caller.allCases)
    func everyRouteAnswersByRole(_ caller: Caller) async throws {
        let console = try Console()
        defer { console.remove() }
        let token: String? = switch caller {
        case .anonymous: nil
        case .badToken: "bst_nope_nope"
        default: try console.token(caller.role!)
        }
        try await console.app.test(.router) { client async throws in
            for spec in APIRoutes.specs {
                let method = HTTPRequest.Method(spec.method)!
                var headers = token.map(bearer) ?? HTTPFields()
                var body: ByteBuffer?
                if method == .post {
                    headers[.contentType] = "application/json"
                    body = ByteBuffer(string: Self.body(for: spec.path))
                }
                let response = try await client.execute(uri: Self.concrete(spec.path), method: method, headers: headers, body: body)
                let status = response.status.code
                let label = "\(spec.method) \(spec.path) as \(caller): \(status) \(response.text)"
                #expect(status < 500, "\(label)")
                guard let required = spec.role else {
                    #expect(status == 200, "\(label)")
                    continue
                }
                switch caller.role {
                case nil:
                    #expect(status == 401, "\(label)")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                case let role? where !role.includes(required):
                    #expect(status == 403, "\(label)")
                default:
                    #expect(status != 401 && status != 403, "\(label)")
                }
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(label)")
            }
        }
    }

    @Test func refusalsOfStateChangesAreAudited() async throws {
        let console = try Console()
        defer { console.remove() }
        let viewer = try console.token(.viewer)
        try await console.app.test(.router) { client async throws in
            let r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: jsonHeaders(viewer), body: ByteBuffer(string: #"{"cidr":"0.0.0.0/0"}"#))
            #expect(r.status == .forbidden)
        }
        #expect(console.control.banList.list().isEmpty)
        let denied = await console.control.records().filter { $0["event"] as? String == "admin_action" }
        #expect(denied.count == 1)
        #expect(denied.first?["action"] as? String == "ban_add")
        #expect(denied.first?["outcome"] as? String == "denied")
        #expect(denied.first?["user"] as? String == "token:t-viewer")
    }

    @Test func actionsReachTheBrokerAndTheAuditLog() async throws {
        let console = try Console()
        defer { console.remove() }
        let op = try console.token(.operator)
        try await console.app.test(.router) { client async throws in
            var r = try await client.execute(uri: "/api/v1/clients/kick", method: .post, headers: jsonHeaders(op), body: ByteBuffer(string: #"{"client_id":"sensor-1"}"#))
            #expect(r.status == .ok)
            r = try await client.execute(uri: "/api/v1/clients/kick", method: .post, headers: jsonHeaders(op), body: ByteBuffer(string: #"{"client_id":"ghost"}"#))
            #expect(r.status == .notFound)
            r = try await client.execute(uri: "/api/v1/retained?topic=plant/line1/status", method: .delete, headers: bearer(op))
            #expect(r.status == .ok)
            r = try await client.execute(uri: "/api/v1/retained?topic=plant/%23", method: .delete, headers: bearer(op))
            #expect(r.status == .badRequest)
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: jsonHeaders(op), body: ByteBuffer(string: #"{"ip":"192.0.2.7","reason":"scan"}"#))
            #expect(r.status == .created)
            r = try await client.execute(uri: "/api/v1/bans?ip=192.0.2.7", method: .delete, headers: bearer(op))
            #expect(r.status == .ok)
        }
        #expect(console.control.kicked.withLock { $0 } == ["sensor-1"])
        #expect(console.control.deleted.withLock { $0 } == ["plant/line1/status"])
        let actions = await console.control.records().filter { $0["event"] as? String == "admin_action" }
        #expect(actions.map { $0["action"] as? String } == ["client_kick", "client_kick", "retained_delete", "ban_add", "ban_remove"])
        #expect(actions.map { $0["outcome"] as? String } == ["success", "failure", "success", "success", "success"])
        #expect(actions.allSatisfy { $0["via"] as? String == "token" })
    }

    @Test func badInputIsA400WithAMessage() async throws {
        let console = try Console()
        defer { console.remove() }
        let admin = console.bootstrapToken
        try await console.app.test(.router) { client async throws in
            for (uri, method, body) in [
                ("/api/v1/bans", HTTPRequest.Method.post, "not json"), ("/api/v1/bans", .post, #"{"ip":"999.1.1.1"}"#),
                ("/api/v1/bans", .post, #"{"ip":"192.0.2.1","user":"x"}"#), ("/api/v1/bans", .post, #"{"ip":"192.0.2.1","duration_seconds":-1}"#),
                ("/api/v1/users", .post, #"{"name":"a:b","role":"viewer"}"#), ("/api/v1/users", .post, #"{"name":"x","role":"root"}"#),
                ("/api/v1/tokens", .post, #"{"name":"ci","role":"viewer","expires_days":9999}"#),
                ("/api/v1/clients/kick", .post, #"{"client":"x"}"#),
            ] {
                let r = try await client.execute(uri: uri, method: method, headers: jsonHeaders(admin), body: ByteBuffer(string: body))
                #expect(r.status == .badRequest, "\(uri) \(body): \(r.status)")
                #expect(r.text.contains("\"error\""), "\(uri) \(body)")
            }
            for uri in ["/api/v1/acl/check?topic=a", "/api/v1/acl/check?action=publish", "/api/v1/retained?filter=a/%23%23"] {
                let r = try await client.execute(uri: uri, method: .get, headers: bearer(admin))
                #expect(r.status == .badRequest, "\(uri)")
            }
            let unknown = try await client.execute(uri: "/api/v1/nothing", method: .get, headers: bearer(admin))
            #expect(unknown.status == .notFound)
            #expect(unknown.text.contains("no such route"))
        }
    }

    @Test func optionalProvidersAreNotConfiguredUntilInstalled() async throws {
        let without = try Console()
        defer { without.remove() }
        let with = try Console(bridges: FixedBridges())
        defer { with.remove() }
        try await without.app.test(.router) { client async throws in
            let r = try await client.execute(uri: "/api/v1/bridges", method: .get, headers: bearer(without.bootstrapToken))
            #expect(r.status == .notFound)
            #expect(r.text.contains("not configured"))
            #expect(try await client.execute(uri: "/api/v1/sparkplug/nodes", method: .get, headers: bearer(without.bootstrapToken)).status == .notFound)
        }
        try await with.app.test(.router) { client async throws in
            let r = try await client.execute(uri: "/api/v1/bridges", method: .get, headers: bearer(with.bootstrapToken))
            #expect(r.status == .ok)
            #expect(r.text.contains("cloud"))
        }
    }

    @Test func tokensExpire() async throws {
        let console = try Console()
        defer { console.remove() }
        let token = try console.token(.viewer)
        try await console.app.test(.router) { client async throws in
            #expect(try await client.execute(uri: "/api/v1/whoami", method: .get, headers: bearer(token)).status == .ok)
            console.clock.advance(3601)
            #expect(try await client.execute(uri: "/api/v1/whoami", method: .get, headers: bearer(token)).status == .unauthorized)
            // The bootstrap token does not expire.
            #expect(try await client.execute(uri: "/api/v1/whoami", method: .get, headers: bearer(console.bootstrapToken)).status == .ok)
        }
    }

    @Test func tokensAreHashedAtRestAndShownOnce() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            let r = try await client.execute(uri: "/api/v1/tokens", method: .post, headers: jsonHeaders(console.bootstrapToken),
                                             body: ByteBuffer(string: #"{"name":"ci","role":"operator","expires_days":30}"#))
            #expect(r.status == .created)
            let created = try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [String: Any]
            let token = try #require(created?["token"] as? String)
            let stored = try String(contentsOfFile: console.directory + "/admin-tokens", encoding: .utf8)
            #expect(!stored.contains(String(token.split(separator: "_").last!)))
            #expect(PKIFiles.mode(of: console.directory + "/admin-tokens") == 0o600)
            let who = try await client.execute(uri: "/api/v1/whoami", method: .get, headers: bearer(token))
            #expect(who.text.contains("\"role\":\"operator\""))
            let list = try await client.execute(uri: "/api/v1/tokens", method: .get, headers: bearer(console.bootstrapToken))
            #expect(!list.text.contains(token))
        }
    }

    @Test func monitoringRoutesKeepTheirShape() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            var r = try await client.execute(uri: "/healthz", method: .get)
            #expect(r.status == .ok && r.text == "ok\n")
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            console.control.ready.store(false, ordering: .relaxed)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .serviceUnavailable)
            // On loopback the metrics need no token …
            r = try await client.execute(uri: "/metrics", method: .get)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            // … but a wrong one is still refused.
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: bearer("wrong")).status == .unauthorized)
            #expect(try await client.execute(uri: "/bans", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/sessions", method: .get).status == .unauthorized)
            r = try await client.execute(uri: "/sessions", method: .get, headers: bearer(console.bootstrapToken))
            #expect(r.text.contains("offline-1"))
            #expect(try await client.execute(uri: "/nothing-here", method: .get).status == .notFound)
        }
    }

    @Test func theTextPlainBanThatNeedsNoPreflightIsRefused() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            for path in ["/bans", "/api/v1/bans"] {
                // What a web page can send cross-site without a preflight: no credentials at all …
                var r = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: #"{"cidr":"0.0.0.0/0"}"#))
                #expect(r.status == .unsupportedMediaType, "\(path)")
                // … or even with a token, text/plain is not JSON.
                var withToken = headers
                withToken[.authorization] = "Bearer \(console.bootstrapToken)"
                r = try await client.execute(uri: path, method: .post, headers: withToken, body: ByteBuffer(string: #"{"cidr":"0.0.0.0/0"}"#))
                #expect(r.status == .unsupportedMediaType, "\(path)")
                // JSON without credentials: 401.
                r = try await client.execute(uri: path, method: .post, headers: jsonHeaders(), body: ByteBuffer(string: #"{"cidr":"0.0.0.0/0"}"#))
                #expect(r.status == .unauthorized, "\(path)")
            }
        }
        #expect(console.control.banList.list().isEmpty)
    }

    @Test func foreignOriginsAndCrossSiteFetchesAreRefused() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            var headers = jsonHeaders(console.bootstrapToken)
            headers[.origin] = "https://evil.example"
            var r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.1"}"#))
            #expect(r.status == .forbidden)
            headers[.origin] = "null"
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.1"}"#))
            #expect(r.status == .forbidden)
            headers[.origin] = "https://localhost"
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.1"}"#))
            #expect(r.status == .created)
            headers[.origin] = nil
            headers[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            r = try await client.execute(uri: "/api/v1/bans", method: .post, headers: headers, body: ByteBuffer(string: #"{"ip":"192.0.2.2"}"#))
            #expect(r.status == .forbidden)
        }
    }

    @Test func securityHeadersOnEveryAnswer() async throws {
        let console = try Console()
        defer { console.remove() }
        try await console.app.test(.router) { client async throws in
            for uri in ["/login", "/healthz", "/api/v1/nothing", "/ui/overview"] {
                let r = try await client.execute(uri: uri, method: .get)
                #expect(r.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'none'") == true, "\(uri)")
                #expect(r.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "\(uri)")
                #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff", "\(uri)")
                #expect(r.headers[HTTPField.Name("Strict-Transport-Security")!] != nil, "\(uri)")
            }
        }
    }

    // MARK: Host header, without the test framework's fixed "localhost"

    func respond(_ console: Console, authority: String?, path: String = "/healthz") async throws -> Response {
        let responder = console.server.router().buildResponder()
        let request = Request(head: HTTPRequest(method: .get, scheme: "https", authority: authority, path: path), body: .init(buffer: ByteBuffer()))
        let context = AdminRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        return try await responder.respond(to: request, context: context)
    }

    @Test func aForeignHostHeaderIsRefused() async throws {
        let console = try Console(port: 9443)
        defer { console.remove() }
        for good in ["127.0.0.1:9443", "localhost:9443", "LOCALHOST:9443", "[::1]:9443"] {
            #expect(try await respond(console, authority: good).status == .ok, "\(good)")
        }
        for bad in ["evil.example:9443", "evil.example", "127.0.0.1:80", "127.0.0.1", "127.0.0.1.evil.example:9443", "[::1]x:9443", ""] {
            #expect(try await respond(console, authority: bad).status == .badRequest, "\(bad)")
        }
        #expect(try await respond(console, authority: nil).status == .badRequest)
    }

    @Test func metricsOffLoopbackNeedAToken() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-admin-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try DevelopmentPKI.ensure(dataDir: directory + "/pki")
        let control = try FakeBrokerControl(directory: directory)
        let configuration = AdminConfiguration(scheme: .https, host: "192.0.2.10", port: 9443, dataDirectory: directory,
                                               certificateFile: pki.certFile, keyFile: pki.keyFile)
        let server = try AdminServer(configuration: configuration, control: control, announce: { _ in })
        let responder = server.router().buildResponder()
        func get(_ path: String, token: String? = nil) async throws -> HTTPResponse.Status {
            var head = HTTPRequest(method: .get, scheme: "https", authority: "192.0.2.10:9443", path: path)
            if let token { head.headerFields[.authorization] = "Bearer \(token)" }
            let context = AdminRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
            return try await responder.respond(to: Request(head: head, body: .init(buffer: ByteBuffer())), context: context).status
        }
        #expect(try await get("/metrics") == .unauthorized)
        let token = try String(contentsOfFile: directory + "/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await get("/metrics", token: token) == .ok)
        #expect(try await get("/healthz") == .ok)
    }

    @Test func plainHTTPOffLoopbackAndHTTPSWithoutACertificateAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-admin-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let control = try FakeBrokerControl(directory: NSTemporaryDirectory())
        #expect(throws: AdminSetupError.self) {
            try AdminServer(configuration: AdminConfiguration(scheme: .http, host: "0.0.0.0", port: 9443, dataDirectory: directory),
                            control: control, announce: { _ in })
        }
        #expect(throws: AdminSetupError.self) {
            try AdminServer(configuration: AdminConfiguration(scheme: .https, host: "192.0.2.10", port: 9443, dataDirectory: directory),
                            control: control, announce: { _ in })
        }
    }
}
