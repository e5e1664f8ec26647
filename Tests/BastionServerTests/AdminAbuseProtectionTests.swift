import BastionSecurity
import BastionServer
import Foundation
import NIOCore
import Prometheus
import Synchronization
import Testing

@Suite struct AdminAbuseProtectionTests {
    final class Alerts: Sendable {
        let received = Mutex<[(Alert, String)]>([])
    }

    struct Fixture {
        var protection: AbuseProtection
        var clock: ManualLimitClock
        var metrics: BrokerMetrics
        var alerts: Alerts
        var path: String
        var dir: URL

        /// The audit records written so far, as JSON objects.
        func records() async throws -> [[String: Any]] {
            await protection.audit.flush()
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return try text.split(separator: "\n").map {
                #expect(AuditSchema.validate(line: String($0)) == [])
                return try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }

        func events() async throws -> [String] {
            try await records().compactMap { $0["event"] as? String }
        }
    }

    func fixture(_ yaml: String = "{}") throws -> Fixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-protection-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("audit.log").path
        var options = ServeOptions()
        options.configPath = "t.yaml"
        options.auditLog = path
        let settings = try ProtectionSettings.resolve(file: try ConfigLoader.parse(yaml, file: "t.yaml"), options: options)
        let clock = ManualLimitClock()
        let metrics = BrokerMetrics(registry: PrometheusCollectorRegistry())
        let alerts = Alerts()
        let protection = AbuseProtection(settings: settings, audit: try AuditLog(settings.audit), metrics: metrics, clock: clock,
                                         onAlert: { alert, payload in alerts.received.withLock { $0.append((alert, payload)) } })
        return Fixture(protection: protection, clock: clock, metrics: metrics, alerts: alerts, path: path, dir: dir)
    }

    func address(_ ip: String, _ port: Int = 40000) throws -> SocketAddress {
        try SocketAddress(ipAddress: ip, port: port)
    }

    func peer(_ ip: String) -> AuditPeer { AuditPeer(listener: "mqtt://127.0.0.1:1883", ip: ip, port: 40000) }

    @Test func bruteForceBansTheAddressOnlyAndIsAudited() async throws {
        let f = try fixture("limits: {auth_failures_per_ip: 5, auth_failures_per_user: 0, trusted_networks: []}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let p = f.protection
        for i in 0..<5 {
            #expect(p.admit(remote: try address("127.0.0.1"), listener: "l", listenerIndex: 0))
            p.authenticationFailed(.init(peer: peer("127.0.0.1"), clientID: "guess\(i)", username: "alice", reason: .badPassword),
                                   weight: .costly)
            p.closed(remote: try address("127.0.0.1"))
        }
        #expect(!p.admit(remote: try address("127.0.0.1"), listener: "l", listenerIndex: 0))
        #expect(!p.admit(remote: try address("::ffff:127.0.0.1"), listener: "l", listenerIndex: 0))
        #expect(p.admit(remote: try address("127.0.0.2"), listener: "l", listenerIndex: 0))

        let records = try await f.records()
        #expect(records.filter { $0["event"] as? String == "auth_failure" }.count == 5)
        let ban = try #require(records.first { $0["event"] as? String == "ban" })
        #expect(ban["subject"] as? String == "127.0.0.1")
        #expect(ban["origin"] as? String == "auth_failures")
        #expect(ban["duration_seconds"] as? Int == 60)
        // Two refusals, one record: refusals are reported once per interval.
        #expect(records.filter { $0["event"] as? String == "connection_refused" }.count == 1)
        let text = f.metrics.prometheusText()
        #expect(text.contains("bastion_auth_failures_total 5\n"))
        #expect(text.contains("bastion_bans_total{origin=\"auth_failures\"} 1\n"))
        #expect(text.contains("bastion_connections_refused_total{reason=\"banned\"} 2\n"))
        #expect(text.contains("bastion_bans_active 1.0\n"))
    }

    @Test func bannedIdentitiesDoNotFeedBruteForceCounting() async throws {
        let f = try fixture("limits: {auth_failures_per_ip: 2}\nbans: [{user: mallory}]")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        #expect(f.protection.bannedIdentity(username: "mallory", clientID: "x")?.origin == .config)
        #expect(f.protection.bannedIdentity(username: "alice", clientID: "x") == nil)
        for _ in 0..<5 {
            f.protection.authenticationFailed(.init(peer: peer("127.0.0.9"), clientID: "x", username: "mallory", reason: .banned),
                                              weight: .none)
        }
        #expect(f.protection.bans.isBanned(ip: IPAddress("127.0.0.9")!) == nil)
    }

    @Test func closingReleasesTheAddressSlot() async throws {
        let f = try fixture("limits: {max_connections_per_ip: 1}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let p = f.protection
        let a = try address("10.1.1.1")
        #expect(p.admit(remote: a, listener: "l", listenerIndex: 0))
        #expect(!p.admit(remote: a, listener: "l", listenerIndex: 0))
        p.closed(remote: a)
        #expect(p.admit(remote: a, listener: "l", listenerIndex: 0))
        let records = try await f.records()
        #expect(records.contains { $0["event"] as? String == "connection_refused" && $0["reason"] as? String == "too_many_per_address" })
    }

    @Test func trustedSourcesAreExemptFromPerAddressLimits() async throws {
        let f = try fixture("limits: {max_connections_per_ip: 1, connect_rate_per_ip: 1, connect_burst_per_ip: 1}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        for _ in 0..<50 { #expect(f.protection.admit(remote: try address("127.0.0.1"), listener: "l", listenerIndex: 0)) }
        #expect(f.protection.admit(remote: try address("::1"), listener: "l", listenerIndex: 0))
        #expect(f.protection.admit(remote: try address("127.0.0.3"), listener: "l", listenerIndex: 0))
        #expect(!f.protection.admit(remote: try address("127.0.0.3"), listener: "l", listenerIndex: 0))
    }

    @Test func aSuppressedBanOfATrustedAddressIsAuditedCountedAndAlerted() async throws {
        let f = try fixture("limits: {auth_failures_per_ip: 2}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        for _ in 0..<2 {
            f.protection.authenticationFailed(.init(peer: peer("127.0.0.1"), clientID: "x", username: "u", reason: .badPassword), weight: .costly)
        }
        #expect(f.protection.admit(remote: try address("127.0.0.1"), listener: "l", listenerIndex: 0))
        let records = try await f.records()
        #expect(records.contains { $0["event"] as? String == "ban_suppressed" && $0["subject"] as? String == "127.0.0.1" })
        #expect(records.contains { $0["event"] as? String == "alert" && $0["kind"] as? String == "ban_suppressed" })
        #expect(!records.contains { $0["event"] as? String == "ban" })
        #expect(f.alerts.received.withLock { $0.contains { $0.0.kind == .banSuppressed } })
        #expect(f.metrics.prometheusText().contains("bastion_bans_suppressed_total 1\n"))
    }

    @Test func aUserIsThrottledForFailingUntrustedSourcesOnly() async throws {
        let f = try fixture("limits: {auth_failures_per_user: 3, auth_failures_per_ip: 100}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let p = f.protection
        for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1"] {
            p.authenticationFailed(.init(peer: peer(ip), clientID: "x", username: "alice", reason: .badPassword), weight: .costly)
        }
        #expect(p.isThrottled(remote: try address("10.0.0.1"), username: "alice"))
        #expect(!p.isThrottled(remote: try address("10.0.0.9"), username: "alice"))
        // A trusted source fronts everyone: throttling it would lock alice out for all of them.
        #expect(!p.isThrottled(remote: try address("127.0.0.1"), username: "alice"))
        #expect(f.alerts.received.withLock { $0.contains { $0.0.kind == .userThrottled } })
    }

    @Test func aFlappingClientIDIsBackedOffNotItsAddress() async throws {
        let f = try fixture("limits: {flap_connections: 3, flap_min_duration: 1}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let p = f.protection
        for _ in 0..<3 { p.sessionEnded(clientID: "twin", duration: .milliseconds(100), clean: false) }
        #expect(p.bannedIdentity(username: nil, clientID: "twin")?.origin == .flapping)
        #expect(p.bannedIdentity(username: nil, clientID: "other") == nil)
        #expect(p.admit(remote: try address("10.9.9.9"), listener: "l", listenerIndex: 0))
        let records = try await f.records()
        #expect(records.contains { $0["event"] as? String == "ban" && $0["origin"] as? String == "flapping" && $0["subject"] as? String == "twin" })
    }

    @Test func alertsAreAuditedCountedAndHandedOver() async throws {
        let f = try fixture("alerts: {acl_denials: 3, window: 60}")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        for _ in 0..<5 {
            f.protection.authorizationDenied(.init(peer: peer("127.0.0.1"), clientID: "c", username: nil, operation: .publish,
                                                   topic: "secret", rule: "default deny"))
        }
        let received = f.alerts.received.withLock { $0 }
        #expect(received.count == 1)
        #expect(received.first?.0.kind == .aclDenials)
        #expect(received.first?.1.contains(#""kind":"acl_denials""#) == true)
        let events = try await f.events()
        #expect(events.filter { $0 == "authz_denied" }.count == 5)
        #expect(events.filter { $0 == "alert" }.count == 1)
        #expect(f.metrics.prometheusText().contains("bastion_acl_denials_total{operation=\"publish\"} 5\n"))
    }

    @Test func reloadReplacesConfiguredBansAndPolicies() async throws {
        let f = try fixture("bans: [{address: 10.0.0.0/8}]")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        #expect(!f.protection.admit(remote: try address("10.2.3.4"), listener: "l", listenerIndex: 0))
        let next = try ProtectionSettings.resolve(
            file: try ConfigLoader.parse("bans: [{client_id: rogue}]\nlimits: {publish_rate_messages: 7}", file: "t.yaml"),
            options: ServeOptions())
        f.protection.reload(next, path: "t.yaml")
        #expect(f.protection.admit(remote: try address("10.2.3.4"), listener: "l", listenerIndex: 0))
        #expect(f.protection.bannedIdentity(username: nil, clientID: "rogue") != nil)
        #expect(f.protection.publishRateLimiter(listenerIndex: 0, now: f.protection.now()).policy.messagesPerSecond == 7)
        f.protection.reloadRejected(path: "t.yaml", error: "t.yaml: 'limits.max_inflight': 0 is out of range")
        let records = try await f.records()
        #expect(records.contains { $0["event"] as? String == "unban" && $0["cause"] as? String == "config_reload" })
        #expect(records.filter { $0["event"] as? String == "config_reload" }.map { $0["outcome"] as? String } == ["success", "rejected"])
    }

    @Test func listenerPublishRatesOverrideTheGlobalOne() throws {
        let f = try fixture("""
            limits: {publish_rate_messages: 100}
            listeners:
              - url: mqtt://127.0.0.1:1883
              - url: mqtt://127.0.0.1:1884
                limits: {publish_rate_messages: 1, publish_rate_action: disconnect}
            """)
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let now = f.protection.now()
        #expect(f.protection.publishRateLimiter(listenerIndex: 0, now: now).policy.messagesPerSecond == 100)
        let strict = f.protection.publishRateLimiter(listenerIndex: 1, now: now).policy
        #expect(strict.messagesPerSecond == 1)
        #expect(strict.action == .disconnect)
        #expect(f.protection.publishRateLimiter(listenerIndex: 7, now: now).policy.messagesPerSecond == 100)
    }

    @Test func startAndShutdownFrameTheLog() async throws {
        let f = try fixture("bans: [{client_id: rogue}]")
        defer { try? FileManager.default.removeItem(at: f.dir) }
        // Configured bans hold from the start, and are reported after `start`.
        #expect(f.protection.bannedIdentity(username: nil, clientID: "rogue") != nil)
        f.protection.started(version: "t", listeners: ["mqtt://127.0.0.1:1883"], configPath: nil)
        f.protection.connectionAccepted(.init(peer: peer("127.0.0.1"), clientID: "c", username: nil, identity: nil,
                                              protocolVersion: "5.0", cleanStart: true))
        await f.protection.shutdown(cause: .signal, uptimeSeconds: 3)
        #expect(try await f.events() == ["start", "ban", "connection_accepted", "shutdown"])
    }
}
