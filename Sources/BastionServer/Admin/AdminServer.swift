import BastionCore
import BastionSecurity
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// What the admin server reads from the running broker. Every closure must be cheap and safe
/// from any thread.
public struct AdminSources: Sendable {
    public var metrics: BrokerMetrics?
    /// The broker's counters, folded into `metrics` before each scrape.
    public var stats: (@Sendable () -> BrokerStatsSnapshot)?
    /// True when every listener is bound and the store is healthy.
    public var isReady: @Sendable () -> Bool
    public var bans: BanList?
    public var audit: AuditLog?
    /// Sessions with their owners (`GET /sessions`).
    public var sessions: (@Sendable () -> [SessionRegistry.Summary])? = nil
    /// Monotonic and wall clocks for ban expiry times (tests inject).
    public var clock: any LimitClock
    public var wallClock: @Sendable () -> Int64

    public init(metrics: BrokerMetrics?, stats: (@Sendable () -> BrokerStatsSnapshot)?, isReady: @escaping @Sendable () -> Bool,
                bans: BanList?, audit: AuditLog? = nil, clock: any LimitClock = SystemLimitClock(),
                wallClock: @escaping @Sendable () -> Int64 = { RFC3339.nowMilliseconds() }) {
        self.metrics = metrics
        self.stats = stats
        self.isReady = isReady
        self.bans = bans
        self.audit = audit
        self.clock = clock
        self.wallClock = wallClock
    }
}

/// The admin HTTP listener (Hummingbird) as a ServiceLifecycle service:
/// - `GET /metrics`: Prometheus text format
/// - `GET /healthz`: 200 while the process runs
/// - `GET /readyz`: 200 when listeners are bound and the store is healthy, else 503
/// - `GET /bans`, `POST /bans`, `DELETE /bans?ip=…|cidr=…|user=…|client_id=…`: ban management
/// With a token configured, every route except /healthz and /readyz requires
/// `Authorization: Bearer TOKEN`.
public final class AdminServer: Service, Sendable {
    let settings: AdminSettings
    let sources: AdminSources
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    private let bound = Mutex(BoundState())

    private struct BoundState {
        var port: Int?
        var finished = false
        var waiters: [CheckedContinuation<Int?, Never>] = []
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(settings: AdminSettings, sources: AdminSources, logger: Logger = Logger(label: "bastion.admin"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.settings = settings
        self.sources = sources
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    /// The bound port once listening (useful with port 0); nil if the server stopped first.
    public func waitUntilBound() async -> Int? {
        await withCheckedContinuation { continuation in
            let ready: Int?? = bound.withLock { state in
                if let port = state.port { return .some(port) }
                if state.finished { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func finish(port: Int?) {
        let waiters = bound.withLock { state in
            if let port { state.port = port } else { state.finished = true }
            let w = state.waiters
            state.waiters = []
            return w
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    public func run() async throws {
        // Defence in depth: settings resolution already refuses this.
        if !AdminSettings.isLoopback(host: settings.host), !(settings.allowRemote && settings.token != nil) {
            finish(port: nil)
            throw SetupError(description: "admin listener \(settings.url) is not loopback and no token is configured")
        }
        let app = Application(
            router: Self.router(settings: settings, sources: sources),
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port
                logger.notice("admin listener started", metadata: ["url": "http://\(settings.host):\(port.map(String.init) ?? "?")"])
                finish(port: port)
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger)
        defer { finish(port: nil) }
        try await app.run()
    }

    // MARK: Routes

    static func router(settings: AdminSettings, sources: AdminSources) -> Router<BasicRequestContext> {
        let router = Router()
        let token = settings.token.map { Array($0.utf8) }

        @Sendable func authorized(_ request: Request) -> Bool {
            guard let token else { return true }
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
            return constantTimeEqual(Array(header.dropFirst("Bearer ".count).utf8), token)
        }

        router.get("healthz") { _, _ -> Response in text(.ok, "ok\n") }
        router.get("readyz") { _, _ -> Response in
            sources.isReady() ? text(.ok, "ready\n") : text(.serviceUnavailable, "not ready\n")
        }
        router.get("metrics") { request, _ -> Response in
            guard authorized(request) else { return unauthorized() }
            guard let metrics = sources.metrics else { return text(.notFound, "metrics are disabled\n") }
            if let stats = sources.stats { metrics.observe(stats(), auditDropped: sources.audit?.droppedCount) }
            if let bans = sources.bans { metrics.setActiveBans(bans.activeCount) }
            var headers = HTTPFields()
            headers[.contentType] = BrokerMetrics.contentType
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.prometheusText())))
        }
        router.get("sessions") { request, _ -> Response in
            guard authorized(request) else { return unauthorized() }
            struct Session: Encodable {
                var client_id: String, owner: String, connected: Bool, persistent: Bool
            }
            let list = sources.sessions?() ?? []
            return json(.ok, list.map { Session(client_id: $0.clientID, owner: $0.owner, connected: $0.connected, persistent: $0.persistent) })
        }
        router.get("bans") { request, _ -> Response in
            guard authorized(request) else { return unauthorized() }
            guard let bans = sources.bans else { return json(.ok, [BanAPI.Ban]()) }
            let now = sources.clock.now()
            let wall = sources.wallClock()
            return json(.ok, bans.list().map { BanAPI.Ban($0, now: now, wallMilliseconds: wall) })
        }
        router.post("bans") { request, _ -> Response in
            guard authorized(request) else { return unauthorized() }
            guard let bans = sources.bans else { return json(.notFound, BanAPIError(error: "bans are disabled")) }
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: 16 * 1024)
            } catch {
                return json(.contentTooLarge, BanAPIError(error: "request body too large"))
            }
            let ban: BanAPI.BanRequest
            do {
                ban = try JSONDecoder().decode(BanAPI.BanRequest.self, from: Data(body.readableBytesView))
            } catch {
                return json(.badRequest, BanAPIError(error: "body must be JSON: {\"ip\"|\"cidr\"|\"user\"|\"client_id\": ..., \"duration_seconds\": N}"))
            }
            let subject: BanSubject
            switch ban.subject() {
            case .success(let s): subject = s
            case .failure(let e): return json(.badRequest, e)
            }
            var duration: Duration?
            if let seconds = ban.duration_seconds {
                guard seconds.isFinite, seconds > 0, seconds <= 10 * 365 * 86_400 else {
                    return json(.badRequest, BanAPIError(error: "duration_seconds must be above 0 and at most ten years"))
                }
                duration = .clampedSeconds(seconds)
            }
            let note = ban.reason.map { String($0.prefix(200)) }
            let entry = bans.ban(subject, duration: duration, note: note)
            let status: HTTPResponse.Status = entry.origin == .config ? .conflict : .created
            return json(status, BanAPI.Ban(entry, now: sources.clock.now(), wallMilliseconds: sources.wallClock()))
        }
        router.delete("bans") { request, _ -> Response in
            guard authorized(request) else { return unauthorized() }
            guard let bans = sources.bans else { return json(.notFound, BanAPIError(error: "bans are disabled")) }
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            let subject: BanSubject
            switch BanAPI.subject(query: query) {
            case .success(let s): subject = s
            case .failure(let e): return json(.badRequest, e)
            }
            switch bans.unban(subject) {
            case .removed: return json(.ok, ["removed": subject.description])
            case .notFound: return json(.notFound, BanAPIError(error: "no ban for \(subject)"))
            case .configured: return json(.conflict, BanAPIError(error: "\(subject) is banned in the configuration file; remove it there and reload"))
            }
        }
        return router
    }
}

private func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/plain; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
}

private func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    var buffer = ByteBuffer(bytes: data)
    buffer.writeString("\n")
    return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
}

private func unauthorized() -> Response {
    var response = json(.unauthorized, BanAPIError(error: "missing or wrong bearer token"))
    response.headers[.wwwAuthenticate] = "Bearer"
    return response
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}
