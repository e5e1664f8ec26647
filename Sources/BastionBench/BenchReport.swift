import Foundation

/// What a run measured. `--json` prints exactly this; the text form is for people.
public struct BenchReport: Codable, Sendable {
    public struct Setup: Codable, Sendable {
        var scenario: String
        var broker: String
        var tls: Bool
        var mqtt: String
        var qos: Int
        var payloadBytes: Int
        public var publishers: Int
        var subscribers: Int
        var connections: Int
        /// Target total publish rate; nil when publishers ran unpaced.
        var targetRate: Double?
        var inflight: Int
        /// End-to-end bound on outstanding deliveries; nil when unbounded.
        var maxBacklog: Int?
        var durationSeconds: Double
        var warmupSeconds: Double
        var threads: Int
    }

    public struct Messages: Codable, Sendable {
        /// PUBLISH packets written by publishers, all and inside the window.
        public var sent: Int
        var sentInWindow: Int
        var sentPerSecond: Double
        /// PUBLISH packets counted by subscribers, all and inside the window.
        public var received: Int
        var receivedInWindow: Int
        var receivedPerSecond: Double
        /// QoS 1/2 publishes acknowledged by the broker.
        var acknowledged: Int
        /// Deliveries the scenario should have produced (sent × subscribers per message) and how
        /// many of them had not arrived when the run ended; nil when the scenario cannot know.
        var expected: Int?
        var missing: Int?
        /// Publisher messages still unacknowledged when the run ended.
        var unacknowledged: Int
    }

    public struct Connections: Codable, Sendable {
        var attempted: Int
        public var connected: Int
        var failed: Int
        /// TCP connect → CONNACK (TLS handshake included), milliseconds.
        var setupMillis: LatencySummary
    }

    struct Resources: Codable, Sendable {
        var brokerPID: Int32?
        var brokerRSSBeforeKiB: Int?
        var brokerRSSAfterKiB: Int?
        /// (after − before) / connected clients.
        var brokerRSSPerConnectionKiB: Double?
        /// Broker CPU time over the measurement window / window length (1.0 = one core).
        var brokerCPU: Double?
        /// The generator's own CPU over the window, to show it was not the bottleneck.
        var generatorCPU: Double?
    }

    public var setup: Setup
    public var messages: Messages
    /// End-to-end latency in microseconds of messages sent inside the window.
    var latencyMicros: LatencySummary
    public var connections: Connections
    var resources: Resources
    var errors: [String: Int]
    var errorCount: Int

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    public func text() -> String {
        var lines: [String] = []
        let s = setup
        lines.append("bastion bench \(s.scenario) → \(s.broker)\(s.tls ? " (TLS)" : "")  MQTT \(s.mqtt)  QoS \(s.qos)  \(s.payloadBytes) B")
        var clients = "  clients: \(s.publishers) publishers, \(s.subscribers) subscribers, \(s.connections) connections; "
        if s.publishers > 0 {
            clients += "rate \(s.targetRate.map { fmt($0) + " msg/s" } ?? "unpaced")"
            if let backlog = s.maxBacklog { clients += ", backlog ≤ \(backlog)" }
            if s.qos > 0 { clients += ", in-flight ≤ \(s.inflight)" }
            clients += "; "
        }
        lines.append(clients + "window \(fmt(s.durationSeconds)) s after \(fmt(s.warmupSeconds)) s warm-up")
        let m = messages
        if s.publishers > 0 {
            lines.append("  sent:     \(fmt(m.sentPerSecond)) msg/s  (\(m.sentInWindow) in window, \(m.sent) total)")
        }
        if s.subscribers > 0 {
            lines.append("  received: \(fmt(m.receivedPerSecond)) msg/s  (\(m.receivedInWindow) in window, \(m.received) total)")
        }
        if let expected = m.expected, let missing = m.missing {
            lines.append("  delivered \(expected - missing) of \(expected) expected (\(missing) missing)")
        }
        if s.qos > 0 && s.publishers > 0 {
            lines.append("  acknowledged: \(m.acknowledged), unacknowledged at end: \(m.unacknowledged)")
        }
        if latencyMicros.count > 0 {
            let l = latencyMicros
            lines.append("  latency µs: p50 \(fmt(l.p50))  p90 \(fmt(l.p90))  p99 \(fmt(l.p99))  p99.9 \(fmt(l.p999))  max \(fmt(l.max))  (n=\(l.count))")
        }
        let c = connections
        lines.append("  connections: \(c.connected)/\(c.attempted) connected, \(c.failed) failed; set-up ms p50 \(fmt(c.setupMillis.p50))  p99 \(fmt(c.setupMillis.p99))  max \(fmt(c.setupMillis.max))")
        let r = resources
        if let before = r.brokerRSSBeforeKiB, let after = r.brokerRSSAfterKiB {
            var line = "  broker RSS: \(before) KiB → \(after) KiB"
            if let per = r.brokerRSSPerConnectionKiB { line += " (\(fmt(per)) KiB per connection)" }
            lines.append(line)
        }
        if let cpu = r.brokerCPU { lines.append("  broker CPU: \(fmt(cpu * 100)) %") }
        if let cpu = r.generatorCPU { lines.append("  generator CPU: \(fmt(cpu * 100)) %") }
        lines.append("  errors: \(errorCount)")
        for (description, count) in errors.sorted(by: { $0.value > $1.value }) {
            lines.append("    \(count) × \(description)")
        }
        return lines.joined(separator: "\n")
    }

    private func fmt(_ value: Double) -> String {
        if value >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
        return String(format: value >= 10 ? "%.1f" : "%.2f", value)
    }
}
