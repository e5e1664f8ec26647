import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Per request: where it came from and who is asking (set by `AdminGuard`).
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address; nil when unknown (tests without a socket).
    public var remoteIP: String?
    var principal: AdminPrincipal?
    /// The browser session, at any stage (pre-login ones included).
    var webSession: WebSessionStore.Session?
    /// A bearer token was presented and refused: the request is unauthenticated, whatever else
    /// it carries.
    var rejectedToken = false

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }
}

/// The checks every request passes before any route runs, and the headers every response gets:
/// - Host must name this listener (a foreign Host is a DNS-rebinding attempt);
/// - Origin, when sent, must be this listener's origin (a foreign page posting here);
/// - state-changing API requests carry `application/json`, forms `application/x-www-form-urlencoded`
///   (a cross-site `text/plain` POST, which needs no preflight, is refused);
/// - the principal is resolved from a bearer token or the session cookie;
/// - errors become 4xx answers with a message, never a stack or a 500.
struct AdminGuard: RouterMiddleware {
    typealias Context = AdminRequestContext
    let state: AdminState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = await guarded(request, context: context, next: next)
        Responses.secure(&response.headers, https: state.configuration.scheme == .https)
        return response
    }

    private func guarded(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        let api = Self.isAPI(request.uri.path)
        guard let authority = request.head.authority, AuthorityCheck.allowed(authority, state: state) else {
            return Responses.error(.badRequest, "unexpected Host header; use the address the console listens on", api: api)
        }
        if let origin = request.headers[.origin] {
            guard AuthorityCheck.allowedOrigin(origin, state: state) else {
                return Responses.error(.forbidden, "cross-origin request refused", api: api)
            }
        }
        let changing = ![.get, .head, .options].contains(request.method)
        if changing, request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" {
            return Responses.error(.forbidden, "cross-site request refused", api: api)
        }
        if changing {
            let type = request.headers[.contentType].map(Self.mediaType)
            let hasBody = (request.headers[.contentLength].flatMap(Int.init) ?? 0) > 0 || request.headers[.transferEncoding] != nil
            if api {
                // DELETE may come without a body; POST, PUT and PATCH always say JSON.
                if (request.method != .delete || hasBody) && type != "application/json" {
                    return Responses.error(.unsupportedMediaType, "send the body as application/json", api: true)
                }
            } else if type != "application/x-www-form-urlencoded" {
                return Responses.error(.unsupportedMediaType, "forms must be application/x-www-form-urlencoded", api: false)
            }
        }

        var context = context
        let now = state.clock.now()
        if let header = request.headers[.authorization] {
            if header.lowercased().hasPrefix("bearer "), let principal = state.tokens.authenticate(String(header.dropFirst(7)), now: now) {
                context.principal = principal
            } else {
                context.rejectedToken = true
            }
        } else if let id = request.cookies[Responses.sessionCookie]?.value, let session = state.sessions.session(id, now: now) {
            context.webSession = session
            if session.stage == .active, let user = session.user, let role = session.role {
                context.principal = AdminPrincipal(name: user, role: role, method: .session)
            }
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let status = error.status
            let message = status == .notFound ? "no such route" : (error.body ?? status.reasonPhrase)
            return Responses.error(status.code >= 500 ? .badRequest : status, message, api: api)
        } catch {
            state.logger.error("admin request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Responses.error(.badRequest, "the request could not be handled", api: api)
        }
    }

    static func isAPI(_ path: String) -> Bool {
        path.hasPrefix("/api/") || path == "/bans" || path == "/sessions" || path == "/metrics"
    }

    static func mediaType(_ header: String) -> String {
        String(header.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
    }
}

/// Which Host and Origin values name this listener.
enum AuthorityCheck {
    static func hosts(_ state: AdminState) -> Set<String> {
        let configuration = state.configuration
        var hosts: Set<String> = [configuration.host.lowercased()]
        if configuration.isLoopback { hosts.formUnion(["localhost", "127.0.0.1", "::1"]) }
        for name in configuration.hostnames { hosts.insert(name.lowercased()) }
        return hosts
    }

    /// "HOST:PORT" or "[V6]:PORT"; the port may be omitted only when it is the scheme's default.
    static func split(_ authority: String) -> (host: String, port: Int?)? {
        var host = Substring(authority)
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = Int(rest.dropFirst()) else { return nil }
                port = p
            } else if !rest.isEmpty {
                return nil
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { return nil }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty else { return nil }
        return (host.lowercased(), port)
    }

    static func allowed(_ authority: String, state: AdminState) -> Bool {
        guard let (host, port) = split(authority), hosts(state).contains(host) else { return false }
        let defaultPort = state.configuration.scheme == .https ? 443 : 80
        return (port ?? defaultPort) == state.port
    }

    static func allowedOrigin(_ origin: String, state: AdminState) -> Bool {
        let prefix = "\(state.configuration.scheme.rawValue)://"
        guard origin.lowercased().hasPrefix(prefix) else { return false }
        return allowed(String(origin.dropFirst(prefix.count)), state: state)
    }
}

/// Building answers.
enum Responses {
    static let sessionCookie = "bastion_session"

    static func secure(_ headers: inout HTTPFields, https: Bool) {
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        // Not no-referrer: browsers then send `Origin: null` with form posts, which the Origin check refuses.
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        headers[.cacheControl] = headers[.cacheControl] ?? "no-store"
        if https { headers[HTTPField.Name("Strict-Transport-Security")!] = "max-age=31536000" }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        data.append(0x0A)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func html(_ status: HTTPResponse.Status, _ body: String) -> Response {
        text(status, body, contentType: "text/html; charset=utf-8")
    }

    /// `{"error": "..."}` for the API, a small page for the UI.
    static func error(_ status: HTTPResponse.Status, _ message: String, api: Bool) -> Response {
        if api {
            var response = json(status, BanAPIError(error: message))
            if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
            return response
        }
        return html(status, Pages.errorPage(status: status, message: message))
    }

    /// See-other to one of the console's own paths (never a caller-supplied URL).
    static func redirect(_ path: StaticString) -> Response {
        var headers = HTTPFields()
        headers[.location] = "\(path)"
        return Response(status: .seeOther, headers: headers)
    }

    static func redirect(_ path: StaticString, cookie: String) -> Response {
        var response = redirect(path)
        response.headers[.setCookie] = cookie
        return response
    }

    /// HttpOnly, Secure, SameSite=Strict, with an expiry.
    static func sessionCookie(_ id: String, maxAge: Int) -> String {
        "\(sessionCookie)=\(id); Path=/; Max-Age=\(maxAge); HttpOnly; Secure; SameSite=Strict"
    }

    static var clearedSessionCookie: String {
        "\(sessionCookie)=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
    }
}

/// The route table.
enum AdminRoutes {
    static func router(_ state: AdminState) -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: AdminGuard(state: state))
        MonitoringRoutes.register(router, state)
        APIRoutes.register(router, state)
        UIRoutes.register(router, state)
        return router
    }
}

/// Role checks shared by the API and the monitoring routes.
enum Authorization {
    /// Nil when the caller may go on; otherwise the answer (401, 403) to send. A refused
    /// state-changing `action` is audited as `denied`.
    static func check(_ context: AdminRequestContext, _ request: Request, role: AdminRole, state: AdminState,
                      action: AuditEvent.AdminAction.Action? = nil) -> Response? {
        guard let principal = context.principal, !context.rejectedToken else {
            return Responses.error(.unauthorized, "authentication required: send Authorization: Bearer TOKEN", api: true)
        }
        guard principal.role.includes(role) else {
            if let action {
                state.record(principal, context, action, target: nil, outcome: .denied, detail: "needs role \(role.rawValue)")
            }
            return Responses.error(.forbidden, "role \(principal.role.rawValue) may not do this; it needs \(role.rawValue)", api: true)
        }
        // A browser's cookie rides along with any request, so a state change through the API with a
        // session needs the page's CSRF token as well.
        if principal.method == .session, ![.get, .head].contains(request.method) {
            let sent = request.headers[HTTPField.Name("X-CSRF-Token")!] ?? ""
            guard let session = context.webSession, constantTimeEqual(Array(sent.utf8), Array(session.csrf.utf8)) else {
                return Responses.error(.forbidden, "missing or wrong X-CSRF-Token", api: true)
            }
        }
        return nil
    }
}

/// A value, or the answer that refuses the request.
enum Checked<T> {
    case success(T)
    case failure(Response)
}

/// Reading request bodies.
enum Bodies {
    static let limit = 64 * 1024

    static func json<T: Decodable>(_ type: T.Type, _ request: Request) async -> Checked<T> {
        var request = request
        guard let body = try? await request.collectBody(upTo: limit) else {
            return .failure(Responses.error(.contentTooLarge, "request body too large", api: true))
        }
        do {
            return .success(try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)))
        } catch {
            return .failure(Responses.error(.badRequest, "body is not the expected JSON: \(describe(error))", api: true))
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "malformed JSON"
        }
    }

    /// `application/x-www-form-urlencoded` fields (the first of repeated names).
    static func form(_ request: Request) async -> [String: String]? {
        var request = request
        guard let body = try? await request.collectBody(upTo: limit) else { return nil }
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = parts.first.flatMap(decode), let value = decode(parts.count > 1 ? parts[1] : "") else { return nil }
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }
}

/// `/metrics`, `/healthz`, `/readyz`, `/bans`, `/sessions`: the monitoring routes as they were
/// before the console, so scrapers, probes and `bastion ban` keep working.
enum MonitoringRoutes {
    static func register(_ router: Router<AdminRequestContext>, _ state: AdminState) {
        let control = state.control
        router.get("healthz") { _, _ -> Response in Responses.text(.ok, "ok\n") }
        router.get("readyz") { _, _ -> Response in
            control.isReady() ? Responses.text(.ok, "ready\n") : Responses.text(.serviceUnavailable, "not ready\n")
        }
        router.get("metrics") { request, context -> Response in
            // Off loopback the numbers say too much about the deployment to give them to anyone.
            if state.configuration.metricsNeedToken || context.rejectedToken,
               let refusal = Authorization.check(context, request, role: .viewer, state: state) {
                return refusal
            }
            guard let text = control.metricsText() else { return Responses.text(.notFound, "metrics are disabled\n") }
            return Responses.text(.ok, text, contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("sessions") { request, context -> Response in
            if let refusal = Authorization.check(context, request, role: .viewer, state: state) { return refusal }
            struct Session: Encodable {
                var client_id: String, owner: String, connected: Bool, persistent: Bool
            }
            let list = await control.sessions(limit: 10_000)
            return Responses.json(.ok, list.map { Session(client_id: $0.client_id, owner: $0.owner, connected: $0.connected, persistent: $0.persistent) })
        }
        router.get("bans") { request, context -> Response in
            if let refusal = Authorization.check(context, request, role: .viewer, state: state) { return refusal }
            return BanHandlers.list(state)
        }
        router.post("bans") { request, context -> Response in
            if let refusal = Authorization.check(context, request, role: .operator, state: state, action: .banAdd) { return refusal }
            return await BanHandlers.add(request, context, state)
        }
        router.delete("bans") { request, context -> Response in
            if let refusal = Authorization.check(context, request, role: .operator, state: state, action: .banRemove) { return refusal }
            return BanHandlers.remove(query: Query.dictionary(request), context, state)
        }
    }
}

enum Query {
    /// The query's fields, decoded as browsers encode forms (`+` is a space, `%2B` a plus: MQTT's
    /// wildcard survives a GET form), the first of repeated names.
    static func dictionary(_ request: Request) -> [String: String] {
        var query: [String: String] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = parts.first.flatMap(decode), let value = decode(parts.count > 1 ? parts[1] : "") else { continue }
            if query[name] == nil { query[name] = value }
        }
        return query
    }

    static func limit(_ request: Request, default value: Int = 1000, maximum: Int = 10_000) -> Int {
        guard let text = dictionary(request)["limit"], let n = Int(text), n > 0 else { return value }
        return min(n, maximum)
    }
}

/// Bans, shared by `/bans` and `/api/v1/bans`.
enum BanHandlers {
    static func list(_ state: AdminState) -> Response {
        guard let bans = state.control.bans else { return Responses.json(.ok, [BanAPI.Ban]()) }
        let clock = SystemLimitClock()
        let now = clock.now()
        let wall = Int64(state.clock.now() * 1000)
        return Responses.json(.ok, bans.list().map { BanAPI.Ban($0, now: now, wallMilliseconds: wall) })
    }

    static func add(_ request: Request, _ context: AdminRequestContext, _ state: AdminState) async -> Response {
        guard let principal = context.principal else { return Responses.error(.unauthorized, "authentication required", api: true) }
        guard let bans = state.control.bans else { return Responses.error(.notFound, "bans are disabled", api: true) }
        let ban: BanAPI.BanRequest
        switch await Bodies.json(BanAPI.BanRequest.self, request) {
        case .success(let b): ban = b
        case .failure(let response): return response
        }
        return add(ban, principal: principal, context, bans: bans, state)
    }

    static func add(_ ban: BanAPI.BanRequest, principal: AdminPrincipal, _ context: AdminRequestContext, bans: BanList,
                    _ state: AdminState) -> Response {
        let subject: BanSubject
        switch ban.subject() {
        case .success(let s): subject = s
        case .failure(let e): return Responses.json(.badRequest, e)
        }
        var duration: Duration?
        if let seconds = ban.duration_seconds {
            guard seconds.isFinite, seconds > 0, seconds <= 10 * 365 * 86_400 else {
                return Responses.error(.badRequest, "duration_seconds must be above 0 and at most ten years", api: true)
            }
            duration = .seconds(seconds)
        }
        let note = ban.reason.map { String($0.prefix(200)) }
        let entry = bans.ban(subject, duration: duration, note: note)
        let configured = entry.origin == .config
        state.record(principal, context, .banAdd, target: subject.description, outcome: configured ? .failure : .success,
                     detail: configured ? "banned in the configuration file" : nil)
        let wall = Int64(state.clock.now() * 1000)
        return Responses.json(configured ? .conflict : .created, BanAPI.Ban(entry, now: SystemLimitClock().now(), wallMilliseconds: wall))
    }

    static func remove(query: [String: String], _ context: AdminRequestContext, _ state: AdminState) -> Response {
        guard let principal = context.principal else { return Responses.error(.unauthorized, "authentication required", api: true) }
        guard let bans = state.control.bans else { return Responses.error(.notFound, "bans are disabled", api: true) }
        let subject: BanSubject
        switch BanAPI.subject(query: query) {
        case .success(let s): subject = s
        case .failure(let e): return Responses.json(.badRequest, e)
        }
        switch bans.unban(subject) {
        case .removed:
            state.record(principal, context, .banRemove, target: subject.description, outcome: .success)
            return Responses.json(.ok, ["removed": subject.description])
        case .notFound:
            state.record(principal, context, .banRemove, target: subject.description, outcome: .failure, detail: "no such ban")
            return Responses.error(.notFound, "no ban for \(subject)", api: true)
        case .configured:
            state.record(principal, context, .banRemove, target: subject.description, outcome: .failure, detail: "banned in the configuration file")
            return Responses.error(.conflict, "\(subject) is banned in the configuration file; remove it there and reload", api: true)
        }
    }
}
