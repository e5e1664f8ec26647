import BastionSecurity
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing
@testable import BastionAdmin

/// A broker with fixed contents that records what the console asked it to do.
final class FakeBrokerControl: BrokerControl {
    let banList = BanList(clock: ManualLimitClock())
    let auditLog: AuditLog
    let auditPath: String
    let kicked = Mutex<[String]>([])
    let deleted = Mutex<[String]>([])
    let reloads = Atomic<Int>(0)
    let ready = Atomic<Bool>(true)
    let bridgeProvider: (any BridgeInventoryProvider)?

    init(directory: String, bridges: (any BridgeInventoryProvider)? = nil) throws {
        auditPath = directory + "/audit.log"
        auditLog = try AuditLog(AuditSinkConfiguration(path: auditPath))
        bridgeProvider = bridges
    }

    func clients(limit: Int) async -> [ClientSummary] {
        [ClientSummary(client_id: "sensor-1", identity: "alice", username: "alice", address: "127.0.0.1:50000", protocol_version: "5.0",
                       listener: "mqtts://127.0.0.1:8883", tls: "TLSv1.3", subscriptions: ["plant/#"], connected_seconds: 12),
         ClientSummary(client_id: "<script>x</script>", identity: nil, username: nil, address: "127.0.0.1:50001", protocol_version: "3.1.1",
                       listener: "mqtt://127.0.0.1:1883", tls: nil, subscriptions: [], connected_seconds: 3)]
    }

    func kick(clientID: String) async -> Bool {
        guard clientID == "sensor-1" else { return false }
        kicked.withLock { $0.append(clientID) }
        return true
    }

    func sessions(limit: Int) async -> [SessionSummary] {
        [SessionSummary(client_id: "sensor-1", owner: "user:alice", connected: true, persistent: true, queued_messages: 0, subscriptions: 1),
         SessionSummary(client_id: "offline-1", owner: "user:bob", connected: false, persistent: true, queued_messages: 7, subscriptions: 2)]
    }

    func subscriptions(limit: Int) async -> [SubscriptionSummary] {
        [SubscriptionSummary(client_id: "sensor-1", filter: "plant/+/temp", qos: 1, share_group: nil, connected: true),
         SubscriptionSummary(client_id: "offline-1", filter: "plant/line1/#", qos: 2, share_group: "g", connected: false)]
    }

    func retained(filter: String, limit: Int) async -> [RetainedSummary]? {
        guard !filter.isEmpty, !filter.contains("##") else { return nil }
        return [RetainedSummary(topic: "plant/line1/status", qos: 1, bytes: 2, preview: "ok")]
    }

    func deleteRetained(topic: String) async -> RetainedDeletion {
        if topic.contains("#") || topic.contains("+") { return .invalidTopic }
        guard topic == "plant/line1/status" else { return .notFound }
        deleted.withLock { $0.append(topic) }
        return .deleted
    }

    func stats() -> BrokerStatsSummary { BrokerStatsSummary(version: "bastion test", uptime_seconds: 5, clients_connected: 2) }
    func metricsText() -> String? { "bastion_connections_current 2\n" }
    func isReady() -> Bool { ready.load(ordering: .relaxed) }

    func checkACL(_ query: ACLQuery) -> ACLCheckResult {
        query.topic.hasPrefix("plant/") ? ACLCheckResult(allowed: true, rule: "acl_file:3") : ACLCheckResult(allowed: false, rule: "default deny")
    }

    func lintACL() -> [String] { ["acl:2: warning: grants '#' to everyone"] }

    func reloadACL() async -> ReloadOutcome {
        reloads.add(1, ordering: .relaxed)
        return ReloadOutcome(ok: true)
    }

    func reloadConfig() async -> ReloadOutcome { ReloadOutcome(ok: false, error: "config.yaml:3: limits.max_inflight: 0 is out of range") }

    var bans: BanList? { banList }
    var audit: AuditLog { auditLog }

    func auditTail(_ query: AuditQuery) async -> [String] {
        await auditLog.flush()
        let text = (try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? ""
        var lines = text.split(separator: "\n").map(String.init)
        if let event = query.event { lines = lines.filter { $0.contains("\"event\":\"\(event)\"") } }
        return Array(lines.suffix(query.limit))
    }

    func alerts(limit: Int) -> [AlertSummary] { [AlertSummary(at: "2024-05-01T12:00:00.000Z", kind: "auth_failures", count: 60, threshold: 50, subject: nil)] }
    func certificates() -> [CertificateSummary] { [] }
    var bridges: (any BridgeInventoryProvider)? { bridgeProvider }
    var sparkplug: (any SparkplugInventoryProvider)? { nil }

    /// The audit records written so far, decoded.
    func records() async -> [[String: Any]] {
        await auditLog.flush()
        let text = (try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

struct FixedBridges: BridgeInventoryProvider {
    func bridges() async -> [BridgeSummary] { [BridgeSummary(name: "cloud", remote: "mqtts://cloud.example:8883", connected: true)] }
}

final class Announcements: Sendable {
    let lines = Mutex<[String]>([])
}

/// A console over a fake broker in a temporary data directory, with a manual clock.
struct Console {
    let directory: String
    let control: FakeBrokerControl
    let server: AdminServer
    let clock: ManualAdminClock
    let announcements: Announcements
    let app: Application<RouterResponder<AdminRequestContext>>

    init(scheme: AdminConfiguration.Scheme = .https, port: Int = 443, bridges: (any BridgeInventoryProvider)? = nil,
         lockout: LoginLockoutPolicy = LoginLockoutPolicy()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-admin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        control = try FakeBrokerControl(directory: directory, bridges: bridges)
        clock = ManualAdminClock()
        let announced = Announcements()
        announcements = announced
        var configuration = AdminConfiguration(scheme: scheme, host: "127.0.0.1", port: port, dataDirectory: directory, lockout: lockout)
        configuration.lockout = lockout
        server = try AdminServer(configuration: configuration, control: control, logger: Logger(label: "test"), clock: clock,
                                 announce: { line in announced.lines.withLock { $0.append(line) } })
        app = Application(router: server.router())
    }

    var state: AdminState { server.state }

    /// The bootstrap token (role admin).
    var bootstrapToken: String {
        (try? String(contentsOfFile: directory + "/admin-token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    var initialPassword: String {
        (try? String(contentsOfFile: directory + "/admin-password", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// A token of `role`, created directly in the store.
    func token(_ role: AdminRole) throws -> String {
        try state.tokens.create(name: "t-\(role.rawValue)", role: role, lifetime: 3600, createdBy: "test", now: clock.now()).1
    }

    /// A logged-in browser session of `role` (TOTP done), as a cookie and its CSRF token.
    func session(_ role: AdminRole, user: String? = nil) -> (cookie: String, csrf: String) {
        let s = state.sessions.create(stage: .active, user: user ?? "web-\(role.rawValue)", role: role, source: "password", now: clock.now())
        return ("\(Responses.sessionCookie)=\(s.id)", s.csrf)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

func bearer(_ token: String) -> HTTPFields {
    var headers = HTTPFields()
    headers[.authorization] = "Bearer \(token)"
    return headers
}

func jsonHeaders(_ token: String? = nil) -> HTTPFields {
    var headers = token.map(bearer) ?? HTTPFields()
    headers[.contentType] = "application/json"
    return headers
}

func cookieHeaders(_ cookie: String, form: Bool = false) -> HTTPFields {
    var headers = HTTPFields()
    headers[.cookie] = cookie
    if form { headers[.contentType] = "application/x-www-form-urlencoded" }
    return headers
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The value of `name` in a Set-Cookie header.
    func cookie(_ name: String) -> String? {
        for value in headers[values: .setCookie] {
            let pair = value.split(separator: ";").first ?? ""
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return String(parts[1]) }
        }
        return nil
    }
}

/// The value of a hidden input named `name`.
func hiddenField(_ name: String, in html: String) -> String? {
    guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
    let rest = html[range.upperBound...]
    return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
}

func formBody(_ fields: [String: String]) -> ByteBuffer {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return ByteBuffer(string: fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&"))
}
