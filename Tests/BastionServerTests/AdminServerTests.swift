import BastionSecurity
import BastionServer
import Foundation
import Prometheus
import Synchronization
import Testing

@Suite struct AdminServerTests {
    final class Flag: Sendable {
        let value = Mutex(false)
    }

    /// Runs an admin server on 127.0.0.1 with a free port for the duration of `body`.
    func withServer(token: String? = nil, sources: AdminSources,
                    _ body: (_ port: Int) async throws -> Void) async throws {
        let server = AdminServer(settings: AdminSettings(host: "127.0.0.1", port: 0, token: token), sources: sources)
        let task = Task { try await server.run() }
        defer { task.cancel() }
        let port = try #require(await server.waitUntilBound())
        try await body(port)
        task.cancel()
        _ = try? await task.value
    }

    func sources(ready: Flag = Flag(), bans: BanList? = BanList(clock: ManualLimitClock()),
                 metrics: BrokerMetrics? = BrokerMetrics(registry: PrometheusCollectorRegistry()),
                 stats: (@Sendable () -> BrokerStatsSnapshot)? = nil) -> AdminSources {
        AdminSources(metrics: metrics, stats: stats, isReady: { ready.value.withLock { $0 } }, bans: bans,
                     clock: ManualLimitClock(), wallClock: { 0 })
    }

    @Test func healthAndReadiness() async throws {
        let ready = Flag()
        try await withServer(sources: sources(ready: ready)) { port async throws in
            let client = AdminClient(host: "127.0.0.1", port: port)
            let health = try await client.request(.get, "/healthz")
            #expect(health.status == 200)
            #expect(health.body == "ok\n")
            #expect(try await client.request(.get, "/readyz").status == 503)
            ready.value.withLock { $0 = true }
            #expect(try await client.request(.get, "/readyz").status == 200)
            #expect(try await client.request(.get, "/nothing-here").status == 404)
        }
    }

    @Test func metricsAreServedInPrometheusTextFormatAndMove() async throws {
        let box = ReceivedBox()
        let stats: @Sendable () -> BrokerStatsSnapshot = {
            var s = BrokerStatsSnapshot(version: "t", uptimeSeconds: 1)
            s.publishReceived = QoSCounts(qos0: box.get())
            return s
        }
        try await withServer(sources: sources(stats: stats)) { port async throws in
            let client = AdminClient(host: "127.0.0.1", port: port)
            let first = try await client.request(.get, "/metrics")
            #expect(first.status == 200)
            #expect(first.contentType == "text/plain; version=0.0.4; charset=utf-8")
            #expect(first.body.contains("bastion_messages_received_total{qos=\"0\"} 0\n"))
            box.set(7)
            let second = try await client.request(.get, "/metrics")
            #expect(second.body.contains("bastion_messages_received_total{qos=\"0\"} 7\n"))
        }
    }

    @Test func banManagement() async throws {
        let bans = BanList(clock: ManualLimitClock())
        bans.setConfigured([(.username("configured"), "from the file")])
        try await withServer(sources: sources(bans: bans)) { port async throws in
            let client = AdminClient(host: "127.0.0.1", port: port)
            let added = try await client.addBan(BanAPI.BanRequest(ip: "192.0.2.9", duration_seconds: 120, reason: "testing"))
            #expect(added.type == "ip")
            #expect(added.value == "192.0.2.9")
            #expect(added.origin == "manual")
            #expect(added.expires_in_seconds == 120)
            #expect(added.expires_at == "1970-01-01T00:02:00.000Z")
            #expect(bans.isBanned(ip: IPAddress("192.0.2.9")!) != nil)

            _ = try await client.addBan(BanAPI.BanRequest(cidr: "10.0.0.0/8"))
            let listed = try await client.listBans()
            #expect(listed.map(\.value) == ["configured", "10.0.0.0/8", "192.0.2.9"])
            #expect(listed.first?.permanent == true)

            try await client.removeBan(kind: "ip", value: "192.0.2.9")
            #expect(bans.isBanned(ip: IPAddress("192.0.2.9")!) == nil)
            try await client.removeBan(kind: "cidr", value: "10.0.0.0/8")
            #expect(try await client.request(.delete, "/bans?ip=192.0.2.9").status == 404)
            #expect(try await client.request(.delete, "/bans?user=configured").status == 409)
            #expect(try await client.request(.delete, "/bans").status == 400)
            #expect(try await client.request(.post, "/bans", json: Data("{".utf8)).status == 400)
            #expect(try await client.request(.post, "/bans", json: Data(#"{"ip":"nope"}"#.utf8)).status == 400)
            #expect(try await client.request(.post, "/bans", json: Data(#"{"ip":"1.2.3.4","user":"x"}"#.utf8)).status == 400)
            #expect(try await client.request(.post, "/bans", json: Data(#"{"user":"x","duration_seconds":-1}"#.utf8)).status == 400)
        }
    }

    @Test func aTokenGuardsEverythingButHealthAndReadiness() async throws {
        let token = "0123456789abcdef0123456789abcdef"
        try await withServer(token: token, sources: sources()) { port async throws in
            let anonymous = AdminClient(host: "127.0.0.1", port: port)
            #expect(try await anonymous.request(.get, "/metrics").status == 401)
            #expect(try await anonymous.request(.get, "/bans").status == 401)
            #expect(try await anonymous.request(.post, "/bans", json: Data(#"{"user":"x"}"#.utf8)).status == 401)
            #expect(try await anonymous.request(.get, "/healthz").status == 200)
            #expect(try await anonymous.request(.get, "/readyz").status == 503)
            let wrong = AdminClient(host: "127.0.0.1", port: port, token: token + "x")
            #expect(try await wrong.request(.get, "/metrics").status == 401)
            let right = AdminClient(host: "127.0.0.1", port: port, token: token)
            #expect(try await right.request(.get, "/metrics").status == 200)
            #expect(try await right.listBans().isEmpty)
        }
    }

    @Test func aNonLoopbackAddressWithoutTokenIsRefused() async throws {
        let server = AdminServer(settings: AdminSettings(host: "0.0.0.0", port: 0), sources: sources())
        await #expect(throws: AdminServer.SetupError.self) { try await server.run() }
        #expect(await server.waitUntilBound() == nil)
    }
}

/// A counter the test changes while the server reads it.
final class ReceivedBox: Sendable {
    private let value = Mutex(0)
    func get() -> Int { value.withLock { $0 } }
    func set(_ v: Int) { value.withLock { $0 = v } }
}
