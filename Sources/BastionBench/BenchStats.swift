import Histogram

/// Counters of one event loop, touched only on that loop (no locks or atomics on the hot path);
/// the runner merges one snapshot per loop at the end.
struct BenchStats: Sendable {
    /// PUBLISH packets written, in all and while the measurement window was open.
    var sent = 0
    var sentInWindow = 0
    /// PUBLISH packets received by subscribers, in all and inside the window (by receive time).
    var received = 0
    var receivedInWindow = 0
    /// Received messages that carried no generator timestamp (a foreign publisher).
    var receivedForeign = 0
    /// PUBACK / PUBCOMP received by publishers.
    var acknowledged = 0
    /// Publisher messages still waiting for their acknowledgement.
    var inFlight = 0
    /// End-to-end latency in nanoseconds of messages *sent* inside the window, whenever they
    /// arrived: a backlog drained after the window still shows up in the percentiles.
    var latency = BenchStats.makeHistogram()
    /// TCP connect to CONNACK (TLS handshake and authentication included), nanoseconds.
    var connectTime = BenchStats.makeHistogram()
    var connected = 0
    /// Error description → count.
    var errors: [String: Int] = [:]

    static func makeHistogram() -> Histogram<UInt64> {
        // 1 ns ... 100 s at 3 significant digits: about 0.1 % resolution.
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
    }

    mutating func recordError(_ description: String) {
        errors[description, default: 0] += 1
    }

    mutating func recordLatency(_ nanos: UInt64) {
        _ = latency.record(min(max(nanos, 1), latency.highestTrackableValue))
    }

    mutating func recordConnectTime(_ nanos: UInt64) {
        _ = connectTime.record(min(max(nanos, 1), connectTime.highestTrackableValue))
    }

    mutating func merge(_ other: BenchStats) {
        sent += other.sent
        sentInWindow += other.sentInWindow
        received += other.received
        receivedInWindow += other.receivedInWindow
        receivedForeign += other.receivedForeign
        acknowledged += other.acknowledged
        inFlight += other.inFlight
        latency.add(other.latency)
        connectTime.add(other.connectTime)
        connected += other.connected
        errors.merge(other.errors, uniquingKeysWith: +)
    }

    var errorCount: Int { errors.values.reduce(0, +) }
}

/// Percentiles of a histogram in microseconds, as reported.
struct LatencySummary: Codable, Sendable, Equatable {
    var count: UInt64
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
    var mean: Double

    init(_ histogram: Histogram<UInt64>, unitNanos: Double = 1000) {
        count = histogram.totalCount
        guard histogram.totalCount > 0 else {
            p50 = 0; p90 = 0; p99 = 0; p999 = 0; max = 0; mean = 0
            return
        }
        p50 = Double(histogram.valueAtPercentile(50)) / unitNanos
        p90 = Double(histogram.valueAtPercentile(90)) / unitNanos
        p99 = Double(histogram.valueAtPercentile(99)) / unitNanos
        p999 = Double(histogram.valueAtPercentile(99.9)) / unitNanos
        max = Double(histogram.max) / unitNanos
        mean = histogram.mean / unitNanos
    }
}
