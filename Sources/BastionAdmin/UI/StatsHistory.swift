import Synchronization

/// The last 15 minutes of broker counters (one sample every 10 s), for the overview's charts.
final class StatsHistory: Sendable {
    struct Sample: Sendable, Hashable {
        var at: Double
        var stats: BrokerStatsSummary
    }

    static let capacity = 90
    private let samples = Mutex<[Sample]>([])

    func add(_ stats: BrokerStatsSummary, at time: Double) {
        samples.withLock { list in
            list.append(Sample(at: time, stats: stats))
            if list.count > Self.capacity { list.removeFirst(list.count - Self.capacity) }
        }
    }

    var all: [Sample] { samples.withLock { $0 } }

    /// Per-second rates of a counter between consecutive samples.
    static func rates(_ samples: [Sample], _ counter: (BrokerStatsSummary) -> Int) -> [Double] {
        zip(samples, samples.dropFirst()).map { a, b in
            let dt = b.at - a.at
            return dt > 0 ? max(0, Double(counter(b.stats) - counter(a.stats)) / dt) : 0
        }
    }
}

/// Small line charts as inline SVG, drawn on the server so the overview needs no script.
enum Sparkline {
    /// A polyline of `values` scaled into `width` × `height`, with its latest value as text.
    /// Only numbers go into the markup, so it is safe to embed unescaped.
    static func svg(_ values: [Double], width: Int = 240, height: Int = 48) -> String {
        let maximum = max(values.max() ?? 0, 1)
        let count = max(values.count - 1, 1)
        let points = values.enumerated().map { i, v in
            let x = Double(i) / Double(count) * Double(width)
            let y = Double(height) - v / maximum * Double(height - 4) - 2
            return "\(format(x)),\(format(y))"
        }.joined(separator: " ")
        let line = values.count >= 2 ? "<polyline points=\"\(points)\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>" : ""
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" "
            + "class=\"chart\" role=\"img\" aria-label=\"chart\"><rect width=\"\(width)\" height=\"\(height)\" fill=\"#f8fafc\"/>"
            + "\(line)<text x=\"4\" y=\"12\" font-size=\"10\" fill=\"#475569\">max \(format(maximum))</text></svg>"
    }

    static func format(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        return String(Double(Int((v * 10).rounded())) / 10)
    }
}
