import Foundation
import MQTTCodec

public enum BenchScenarioKind: String, Sendable, Codable, CaseIterable {
    /// Publishers only; counts what was sent (and acknowledged for QoS > 0).
    case pub
    /// Subscribers only; counts what arrives from any publisher.
    case sub
    /// Connections only: set-up time, then held idle.
    case conn
    /// One (or a few) publishers to one topic that every subscriber subscribes to.
    case fanout
    /// Many publishers, each on its own topic, to subscribers of a wildcard covering them all.
    case fanin
    /// N independent publisher → subscriber pairs, one topic per pair.
    case pairs

    /// Scenarios that run both sides and so can measure end to end.
    public var isSelfContained: Bool {
        switch self {
        case .fanout, .fanin, .pairs: true
        case .pub, .sub, .conn: false
        }
    }
}

/// Everything a run needs, already validated.
public struct BenchConfiguration: Sendable {
    struct TLS: Sendable, Equatable {
        var caFile: String?
        var insecure: Bool
        var serverName: String?
    }

    var scenario: BenchScenarioKind
    var host: String = "127.0.0.1"
    var port: Int = 1883
    var tls: TLS?
    var username: String?
    var password: String?
    var version: ProtocolVersion = .v3_1_1
    var qos: QoS = .atMostOnce
    var payloadSize: Int = 64
    var publishers: Int = 1
    var subscribers: Int = 1
    var connections: Int = 1
    /// Total messages per second over all publishers; nil publishes as fast as the broker accepts.
    var rate: Double?
    var connectRate: Double = 2000
    var durationSeconds: Double = 10
    var warmupSeconds: Double = 2
    var drainSeconds: Double = 3
    var inflight: Int = 32
    /// Self-contained scenarios: most deliveries outstanding end to end (0: unbounded; nil: the
    /// default, `BenchConfiguration.defaultBacklog`).
    var maxBacklog: Int?

    /// 1,000 outstanding deliveries per subscriber (at most 20,000): the per-client queue limit
    /// Bastion and Mosquitto both default to, so a broker that drops QoS 1/2 messages beyond its
    /// queue limit is not driven into drops by the generator itself.
    static func defaultBacklog(subscribers: Int) -> Int {
        min(20_000, 1000 * max(subscribers, 1))
    }
    var threads: Int = 2
    var keepAlive: UInt16 = 60
    var persistentSessions = false
    var topicPrefix: String = "bench"
    /// fanin: Sparkplug B edge nodes instead of plain topics and payloads.
    var sparkplug = false
    /// `pub`: topic (with `%i` for the publisher index); `sub`: filter.
    var topic: String?
    var brokerPID: Int32?
    var runID: String = "run"
}

enum BenchRole: Sendable, Equatable {
    case publisher(topic: String, index: Int)
    case subscriber(filter: String)
    case idle
}

struct BenchClientSpec: Sendable, Equatable {
    var clientID: String
    var role: BenchRole
}

/// Who connects, with which role and topic. Subscribers come first so every subscription
/// exists before the first message is published.
struct ScenarioPlan: Sendable, Equatable {
    var clients: [BenchClientSpec]
    /// Deliveries each published message should produce, where the scenario knows it.
    var deliveriesPerMessage: Int?

    var publisherCount: Int { clients.filter { if case .publisher = $0.role { true } else { false } }.count }
    var subscriberCount: Int { clients.filter { if case .subscriber = $0.role { true } else { false } }.count }

    init(clients: [BenchClientSpec], deliveriesPerMessage: Int?) {
        self.clients = clients
        self.deliveriesPerMessage = deliveriesPerMessage
    }

    init(_ config: BenchConfiguration) {
        let base = "\(config.topicPrefix)/\(config.runID)"
        func id(_ role: String, _ i: Int) -> String { "bench-\(config.runID)-\(role)\(i)" }
        func subscribers(_ n: Int, filter: String) -> [BenchClientSpec] {
            (0..<n).map { BenchClientSpec(clientID: id("s", $0), role: .subscriber(filter: filter)) }
        }
        func publishers(_ n: Int, topic: (Int) -> String) -> [BenchClientSpec] {
            (0..<n).map { BenchClientSpec(clientID: id("p", $0), role: .publisher(topic: topic($0), index: $0)) }
        }
        switch config.scenario {
        case .fanout:
            let topic = "\(base)/fanout"
            self.init(clients: subscribers(config.subscribers, filter: topic) + publishers(config.publishers) { _ in topic },
                      deliveriesPerMessage: config.subscribers)
        case .fanin where config.sparkplug:
            // Same depth as the plain fan-in topics, so only the Sparkplug handling differs.
            let group = "spBv1.0/\(config.runID)"
            self.init(clients: subscribers(config.subscribers, filter: "\(group)/NDATA/+")
                        + publishers(config.publishers) { "\(group)/NDATA/e\($0)" },
                      deliveriesPerMessage: config.subscribers)
        case .fanin:
            self.init(clients: subscribers(config.subscribers, filter: "\(base)/fanin/+")
                        + publishers(config.publishers) { "\(base)/fanin/\($0)" },
                      deliveriesPerMessage: config.subscribers)
        case .pairs:
            let n = config.publishers
            var clients: [BenchClientSpec] = []
            for i in 0..<n {
                clients.append(BenchClientSpec(clientID: id("s", i), role: .subscriber(filter: "\(base)/pairs/\(i)")))
            }
            clients += publishers(n) { "\(base)/pairs/\($0)" }
            self.init(clients: clients, deliveriesPerMessage: 1)
        case .pub:
            let pattern = config.topic ?? "\(config.topicPrefix)/pub/%i"
            self.init(clients: publishers(config.publishers) { pattern.replacingOccurrences(of: "%i", with: String($0)) },
                      deliveriesPerMessage: nil)
        case .sub:
            self.init(clients: subscribers(config.subscribers, filter: config.topic ?? "\(config.topicPrefix)/#"),
                      deliveriesPerMessage: nil)
        case .conn:
            self.init(clients: (0..<config.connections).map { BenchClientSpec(clientID: id("c", $0), role: .idle) },
                      deliveriesPerMessage: nil)
        }
    }
}
