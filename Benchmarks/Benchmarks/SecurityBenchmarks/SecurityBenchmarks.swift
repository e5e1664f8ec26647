import BastionSecurity
import Benchmark

/// One ACL decision — the check made on every PUBLISH in (and every delivery out) — against the
/// same 201-rule Mosquitto-format file compare.sh loads into both brokers.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    guard let policy = try? AccessPolicy.make(aclText: ACLFixture.text, aclSource: "bench.acl") else {
        fatalError("the benchmark's own ACL fixture does not parse")
    }
    let sensor = Identity(username: "sensor57", clientID: "sensor57-gateway")
    let anonymous = Identity(username: nil, clientID: "dashboard")

    Benchmark("acl_publish_allowed_user_rule_of_201") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(sensor, .publish, "plant/line57/cell3/telemetry").allowed)
        }
    }

    Benchmark("acl_publish_denied_user_rule_of_201") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(sensor, .publish, "plant/line58/cell3/telemetry").allowed)
        }
    }

    Benchmark("acl_publish_allowed_anonymous_of_201") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(anonymous, .publish, "bench/run/fanin/7").allowed)
        }
    }
}

enum ACLFixture {
    /// An anonymous rule for the bench topics, then 100 users with two rules each.
    static let text: String = {
        var lines = ["topic readwrite bench/#"]
        for i in 1...100 {
            lines.append("user sensor\(i)")
            lines.append("topic write plant/line\(i)/+/telemetry")
            lines.append("topic read plant/line\(i)/commands/#")
        }
        return lines.joined(separator: "\n") + "\n"
    }()
}
