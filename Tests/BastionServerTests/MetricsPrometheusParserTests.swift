import BastionSecurity
import BastionServer
import Foundation
import Prometheus
import Testing

/// The exposition must parse with the reference parser (prometheus_client), which the black-box
/// suite also uses; skipped where Python or the package is missing.
@Suite struct MetricsPrometheusParserTests {
    static let python: String? = {
        for path in ["/usr/bin/python3", "/usr/local/bin/python3"] + pathCandidates() where FileManager.default.isExecutableFile(atPath: path) {
            if run(path, ["-c", "import prometheus_client.parser"]).status == 0 { return path }
        }
        return nil
    }()

    static func pathCandidates() -> [String] {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
    }

    static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: python != nil, "python3 with prometheus_client is not installed"))
    func theReferenceParserReadsEverySample() throws {
        let metrics = BrokerMetrics(registry: PrometheusCollectorRegistry())
        var stats = BrokerStatsSnapshot(version: "t", uptimeSeconds: 3)
        stats.publishReceived = QoSCounts(qos0: 3, qos1: 2, qos2: 1)
        stats.bytesSent = 1234
        metrics.observe(stats)
        metrics.eventLoopLatency(.milliseconds(3))
        metrics.aclDenied(.receive)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bastion-metrics-\(UUID().uuidString).txt")
        try metrics.prometheusText().write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            samples = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            assert samples[("bastion_messages_received_total", (("qos", "1"),))] == 2, samples
            assert samples[("bastion_bytes_sent_total", ())] == 1234
            assert samples[("bastion_acl_denials_total", (("operation", "receive"),))] == 1
            assert samples[("bastion_event_loop_latency_seconds_count", ())] == 1
            print(len(samples))
            """
        let result = Self.run(try #require(Self.python), ["-c", script, file.path])
        #expect(result.status == 0, "\(result.output)")
    }
}
