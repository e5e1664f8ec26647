import BastionCore
import Benchmark
import MQTTCodec
import NIOCore

/// Topic matching against a 100,000-subscription index: the per-PUBLISH routing cost.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    let index = RoutingFixture()

    Benchmark("match_exact_in_100k_subscriptions") { benchmark in
        for _ in benchmark.scaledIterations {
            var matches = 0
            index.trie.forEachMatch("site/42/device/42123/cmd", pickShared: { _, start in start }) { _ in matches += 1 }
            blackHole(matches)
        }
    }

    Benchmark("match_wildcards_in_100k_subscriptions") { benchmark in
        for _ in benchmark.scaledIterations {
            var matches = 0
            index.trie.forEachMatch("site/7/device/7001/telemetry", pickShared: { _, start in start }) { _ in matches += 1 }
            blackHole(matches)
        }
    }
}

/// 100,000 subscriptions shaped like a plant: one command topic per device (99,000), plus
/// per-site `+` and `#` wildcards from dashboards (1,000).
struct RoutingFixture {
    let trie = SubscriptionTrie()
    /// Subscribers are session handles, as in the broker (offline ones: no connection needed).
    let registry = SessionRegistry()
    var next = 0

    init() {
        let options = SubscribePacket.Options(qos: .atLeastOnce)
        for device in 0..<99_000 {
            trie.insert(subscriber(), Subscription(filter: "site/\(device / 1000)/device/\(device)/cmd", options: options))
        }
        for site in 0..<500 {
            trie.insert(subscriber(), Subscription(filter: "site/\(site)/device/+/telemetry", options: options))
            trie.insert(subscriber(), Subscription(filter: "site/\(site)/#", options: options))
        }
    }

    private mutating func subscriber() -> SessionHandle {
        next += 1
        return registry.restore(SessionState(clientID: "c\(next)", expiryInterval: 3600), disconnectedAt: .now())
    }
}
