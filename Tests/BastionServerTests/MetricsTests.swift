import BastionSecurity
@testable import BastionServer
import Prometheus
import Testing

@Suite struct MetricsTests {
    /// The value of the sample `name{labels}` (labels as written in the text, or "" for none).
    func sample(_ text: String, _ name: String, _ labels: String = "") -> Double? {
        let prefix = labels.isEmpty ? "\(name) " : "\(name){\(labels)} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    func stats(received: Int, bytes: Int) -> BrokerStatsSnapshot {
        var s = BrokerStatsSnapshot(version: "test", uptimeSeconds: 5)
        s.clientsConnected = 2
        s.connectionsTotal = 3
        s.publishReceived = QoSCounts(qos0: received, qos1: 1, qos2: 0)
        s.bytesReceived = bytes
        return s
    }

    @Test func everyDocumentedMetricIsExportedFromTheStart() {
        let metrics = BrokerMetrics(registry: PrometheusCollectorRegistry())
        let text = metrics.prometheusText()
        for name in [MetricNames.connectionsCurrent, MetricNames.connectionsTotal, MetricNames.bytesReceived, MetricNames.bytesSent,
                     MetricNames.authFailures, MetricNames.bansActive, MetricNames.queuedMessages, MetricNames.retainedMessages,
                     MetricNames.storeHealthy, MetricNames.auditDropped, MetricNames.uptime] {
            #expect(text.contains("# TYPE \(name) "), "\(name)")
        }
        #expect(sample(text, MetricNames.messagesReceived, #"qos="1""#) == 0)
        #expect(sample(text, MetricNames.aclDenials, #"operation="subscribe""#) == 0)
        #expect(sample(text, MetricNames.connectionsRefused, #"reason="banned""#) == 0)
        #expect(text.contains("# TYPE \(MetricNames.eventLoopLatency) histogram"))
        #expect(text.contains("# HELP \(MetricNames.authFailures) "))
    }

    @Test func snapshotsAdvanceCountersByTheirDifference() {
        let metrics = BrokerMetrics(registry: PrometheusCollectorRegistry())
        metrics.observe(stats(received: 10, bytes: 100))
        metrics.observe(stats(received: 25, bytes: 400))
        let text = metrics.prometheusText()
        #expect(sample(text, MetricNames.messagesReceived, #"qos="0""#) == 25)
        #expect(sample(text, MetricNames.messagesReceived, #"qos="1""#) == 1)
        #expect(sample(text, MetricNames.bytesReceived) == 400)
        #expect(sample(text, MetricNames.connectionsCurrent) == 2)
        #expect(sample(text, MetricNames.connectionsTotal) == 3)
        // A counter never goes backwards.
        metrics.observe(stats(received: 5, bytes: 0))
        #expect(sample(metrics.prometheusText(), MetricNames.messagesReceived, #"qos="0""#) == 25)
    }

    @Test func eventsAreCounted() {
        let metrics = BrokerMetrics(registry: PrometheusCollectorRegistry())
        metrics.authFailed()
        metrics.authFailed()
        metrics.aclDenied(.publish)
        metrics.connectionRefused(.rateExceeded)
        metrics.limitReached(.packetSize)
        metrics.alertRaised(.aclDenials)
        let entry = BanEntry(subject: .username("x"), origin: .flapping, note: nil, since: .origin, expires: nil, offence: 1)
        metrics.banEvent(.banned(entry), activeBans: 4)
        metrics.eventLoopLatency(.microseconds(300))
        let text = metrics.prometheusText()
        #expect(sample(text, MetricNames.authFailures) == 2)
        #expect(sample(text, MetricNames.aclDenials, #"operation="publish""#) == 1)
        #expect(sample(text, MetricNames.connectionsRefused, #"reason="rate_exceeded""#) == 1)
        #expect(sample(text, MetricNames.limitsReached, #"limit="packet_size""#) == 1)
        #expect(sample(text, MetricNames.alerts, #"kind="acl_denials""#) == 1)
        #expect(sample(text, MetricNames.bans, #"origin="flapping""#) == 1)
        #expect(sample(text, MetricNames.bansActive) == 4)
        #expect(sample(text, MetricNames.eventLoopLatency + "_count") == 1)
        #expect(sample(text, MetricNames.eventLoopLatency + "_bucket", #"le="0.00025""#) == 0)
        #expect(sample(text, MetricNames.eventLoopLatency + "_bucket", #"le="0.0005""#) == 1)
    }

    @Test func bootstrapHappensOnce() {
        let first = MetricsBootstrap.bootstrapOnce()
        #expect(MetricsBootstrap.bootstrapOnce() == false)
        #expect(MetricsBootstrap.bootstrapOnce() == false)
        _ = first
    }
}
