import BastionAdmin
import BastionSecurity
import BastionServer
import Foundation
import Logging
import Synchronization
import Testing

/// A broker stand-in with fixed answers, for the console over a real socket.
final class StubControl: BrokerControl {
    let ready = Atomic<Bool>(false)
    let banList: BanList
    let metricsLines = Mutex("bastion_messages_received_total{qos=\"0\"} 0\n")

    init(bans: BanList = BanList(clock: ManualLimitClock())) { banList = bans }

    func clients(limit: Int) async -> [ClientSummary] { [] }
    func kick(clientID: String) async -> Bool { false }
    func sessions(limit: Int) async -> [SessionSummary] { [] }
    func subscriptions(limit: Int) async -> [SubscriptionSummary] { [] }
    func retained(filter: String, limit: Int) async -> [RetainedSummary]? { [] }
    func deleteRetained(topic: String) async -> RetainedDeletion { .notFound }
    func stats() -> BrokerStatsSummary { BrokerStatsSummary() }
    func metricsText() -> String? { metricsLines.withLock { $0 } }
    func isReady() -> Bool { ready.load(ordering: .relaxed) }
    func checkACL(_ query: ACLQuery) -> ACLCheckResult { ACLCheckResult(allowed: false, rule: "default deny") }
    func lintACL() -> [String] { [] }
    func reloadACL() async -> ReloadOutcome { ReloadOutcome(ok: true) }
    func reloadConfig() async -> ReloadOutcome { ReloadOutcome(ok: true) }
    var bans: BanList? { banList }
    var audit: AuditLog { .disabled }
    func auditTail(_ query: AuditQuery) async -> [String] { [] }
    func alerts(limit: Int) -> [AlertSummary] { [] }
    func certificates() -> [CertificateSummary] { [] }
    var bridges: (any BridgeInventoryProvider)? { nil }
    var sparkplug: (any SparkplugInventoryProvider)? { nil }
}

/// A console on 127.0.0.1 with a free port in a temporary data directory, for the duration of `body`.
func withConsole(scheme: AdminConfiguration.Scheme = .http, control: StubControl = StubControl(),
                 _ body: (_ port: Int, _ dataDir: String) async throws -> Void) async throws {
    let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-admin-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dataDir) }
    let server = try AdminServer(configuration: AdminConfiguration(scheme: scheme, host: "127.0.0.1", port: 0, dataDirectory: dataDir),
                                 control: control, logger: Logger(label: "test"), announce: { _ in })
    let task = Task { try await server.run() }
    defer { task.cancel() }
    let port = try #require(await server.waitUntilBound())
    try await body(port, dataDir)
    task.cancel()
    _ = try? await task.value
}

func bootstrapToken(_ dataDir: String) throws -> String {
    try String(contentsOfFile: dataDir + "/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite struct AdminServerTests {
    @Test func healthAndReadiness() async throws {
        let control = StubControl()
        try await withConsole(control: control) { port, _ in
            let client = AdminClient(host: "127.0.0.1", port: port)
            let health = try await client.request(.get, "/healthz")
            #expect(health.status == 200)
            #expect(health.body == "ok\n")
            #expect(try await client.request(.get, "/readyz").status == 503)
            control.ready.store(true, ordering: .relaxed)
            #expect(try await client.request(.get, "/readyz").status == 200)
            #expect(try await client.request(.get, "/nothing-here").status == 404)
        }
    }

    @Test func metricsOnLoopbackNeedNoToken() async throws {
        let control = StubControl()
        try await withConsole(control: control) { port, _ in
            let client = AdminClient(host: "127.0.0.1", port: port)
            let first = try await client.request(.get, "/metrics")
            #expect(first.status == 200)
            #expect(first.contentType == "text/plain; version=0.0.4; charset=utf-8")
            #expect(first.body.contains("bastion_messages_received_total{qos=\"0\"} 0\n"))
        }
    }

    @Test func bansNeedTheToken() async throws {
        let bans = BanList(clock: ManualLimitClock())
        try await withConsole(control: StubControl(bans: bans)) { port, dataDir in
            let anonymous = AdminClient(host: "127.0.0.1", port: port)
            #expect(try await anonymous.request(.get, "/bans").status == 401)
            #expect(try await anonymous.request(.post, "/bans", jsonText: #"{"cidr":"0.0.0.0/0"}"#).status == 401)
            let client = AdminClient(host: "127.0.0.1", port: port, token: try bootstrapToken(dataDir))
            let added = try await client.addBan(BanAPI.BanRequest(ip: "192.0.2.7", duration_seconds: 60, reason: "scan"))
            #expect(added.value == "192.0.2.7")
            #expect(try await client.listBans().map(\.value) == ["192.0.2.7"])
            try await client.removeBan(kind: "ip", value: "192.0.2.7")
            #expect(bans.list().isEmpty)
            await #expect(throws: AdminClient.Failure.self) { try await client.removeBan(kind: "ip", value: "192.0.2.7") }
        }
    }

    @Test func httpsWithTheDevelopmentCA() async throws {
        try await withConsole(scheme: .https) { port, dataDir in
            let trusted = AdminClient(host: "127.0.0.1", port: port, token: try bootstrapToken(dataDir), https: true,
                                      caFile: dataDir + "/tls/ca.pem")
            #expect(try await trusted.request(.get, "/healthz").status == 200)
            let who = try await trusted.request(.get, "/api/v1/whoami")
            #expect(who.status == 200)
            #expect(who.body.contains("\"role\":\"admin\""))
            // Without the CA the certificate is not trusted.
            let untrusted = AdminClient(host: "127.0.0.1", port: port, https: true)
            await #expect(throws: (any Error).self) { try await untrusted.request(.get, "/healthz") }
            // Plain HTTP to the TLS port gets nothing useful.
            let plain = AdminClient(host: "127.0.0.1", port: port)
            let answer = try? await plain.request(.get, "/healthz")
            #expect(answer?.status != 200)
        }
    }
}
