import ArgumentParser
import Foundation
import MQTTCodec
import NIOCore

/// Options every `bastion bench` scenario shares.
public struct BenchOptions: ParsableArguments {
    public init() {}

    @Option(help: "Broker host.") var host = "127.0.0.1"
    @Option(help: "Broker port (default 1883, 8883 with --tls).") var port: Int?
    @Flag(help: "Connect with TLS.") var tls = false
    @Option(help: "CA certificate file (PEM) to verify the broker with.") var cafile: String?
    @Flag(help: "With --tls: do not verify the broker's certificate.") var insecure = false
    @Option(name: .customLong("tls-server-name"), help: "Name to send as SNI and check the certificate against.")
    var tlsServerName: String?
    @Option(help: "User name for CONNECT.") var username: String?
    @Option(help: "Password for CONNECT.") var password: String?
    @Option(help: "MQTT version: 3.1.1 or 5.") var mqtt = "3.1.1"
    @Option(help: "QoS of publications and subscriptions: 0, 1 or 2.") var qos = 0
    @Option(help: "Payload size in bytes (at least \(BenchWire.minimumPayloadSize): magic and send time).") var size = 64
    @Option(help: "Publishers (pairs: number of pairs).") var publishers: Int?
    @Option(help: "Subscribers.") var subscribers: Int?
    @Option(help: "Connections (conn).") var connections: Int?
    @Option(help: "Total publish rate over all publishers, messages/s (default: as fast as the broker accepts).")
    var rate: Double?
    @Option(name: .customLong("connect-rate"), help: "New connections per second.") var connectRate: Double = 2000
    @Option(help: "Measured seconds (conn: seconds to hold the connections).") var duration: Double = 10
    @Option(help: "Warm-up seconds before measuring.") var warmup: Double = 2
    @Option(help: "Seconds to wait after the window for messages still in flight.") var drain: Double = 3
    @Option(help: "Publisher in-flight window for QoS 1/2.") var inflight = 32
    @Option(name: .customLong("max-backlog"),
            help: "fanout/fanin/pairs: most deliveries outstanding between publishers and subscribers (0: unbounded; default 1000 per subscriber, at most 20000).")
    var maxBacklog: Int?
    @Option(help: "Event loop threads of the generator.") var threads = System.coreCount
    @Option(name: .customLong("keep-alive"), help: "Keep alive in seconds (0: none).") var keepAlive = 60
    @Flag(name: .customLong("persistent-sessions"),
          help: "Connect with persistent sessions (3.1.1: clean session 0; 5: session expiry 300 s), so a durable broker stores QoS 1/2 messages.")
    var persistentSessions = false
    @Option(help: "pub: topic, %i becomes the publisher index; sub: topic filter.") var topic: String?
    @Option(name: .customLong("topic-prefix"), help: "Prefix of generated topics.") var topicPrefix = "bench"
    @Flag(help: "fanin: publishers are Sparkplug B edge nodes (spBv1.0/{run}/NDATA/e{i}, an NBIRTH first, protobuf NDATA with a running seq).")
    var sparkplug = false
    @Option(name: .customLong("broker-pid"), help: "Broker process to sample RSS and CPU of (Linux).") var brokerPID: Int32?
    @Flag(help: "Print the report as JSON.") public var json = false

    public struct UsageError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Validates the options for one scenario and fills in that scenario's defaults.
    public func configuration(for scenario: BenchScenarioKind, runID: String) throws(UsageError) -> BenchConfiguration {
        var config = BenchConfiguration(scenario: scenario)
        config.host = host
        config.port = port ?? (tls ? 8883 : 1883)
        guard (1...65535).contains(config.port) else { throw UsageError(description: "--port must be 1-65535, got \(config.port)") }
        if tls {
            config.tls = .init(caFile: cafile, insecure: insecure, serverName: tlsServerName)
        } else if cafile != nil || insecure || tlsServerName != nil {
            throw UsageError(description: "--cafile, --insecure and --tls-server-name need --tls")
        }
        config.username = username
        config.password = password
        if password != nil && username == nil && mqtt != "5" && mqtt != "5.0" {
            throw UsageError(description: "--password needs --username before MQTT 5")
        }
        switch mqtt {
        case "3.1.1", "4": config.version = .v3_1_1
        case "5", "5.0": config.version = .v5
        default: throw UsageError(description: "--mqtt must be 3.1.1 or 5, got '\(mqtt)'")
        }
        guard let qos = QoS(rawValue: UInt8(clamping: max(qos, 0))), (0...2).contains(self.qos) else {
            throw UsageError(description: "--qos must be 0, 1 or 2, got \(self.qos)")
        }
        config.qos = qos
        guard size >= BenchWire.minimumPayloadSize, size <= 16 * 1024 * 1024 else {
            throw UsageError(description: "--size must be \(BenchWire.minimumPayloadSize)...16777216 bytes, got \(size)")
        }
        config.payloadSize = size

        let defaults: (publishers: Int, subscribers: Int) = switch scenario {
        case .fanout: (1, 20)
        case .fanin: (20, 1)
        case .pairs: (10, 10)
        case .pub: (1, 0)
        case .sub: (0, 1)
        case .conn: (0, 0)
        }
        config.publishers = publishers ?? defaults.publishers
        config.subscribers = subscribers ?? defaults.subscribers
        config.connections = connections ?? 1000
        switch scenario {
        case .pairs:
            if let subscribers, subscribers != config.publishers {
                throw UsageError(description: "pairs: --subscribers must equal --publishers (the number of pairs)")
            }
            config.subscribers = config.publishers
        case .pub:
            if subscribers != nil { throw UsageError(description: "pub takes no --subscribers") }
            config.subscribers = 0
        case .sub:
            if publishers != nil || rate != nil { throw UsageError(description: "sub takes no --publishers or --rate") }
            config.publishers = 0
        case .conn:
            if publishers != nil || subscribers != nil || rate != nil {
                throw UsageError(description: "conn takes --connections, not --publishers, --subscribers or --rate")
            }
            config.publishers = 0
            config.subscribers = 0
        case .fanout, .fanin:
            break
        }
        if scenario != .conn && connections != nil { throw UsageError(description: "--connections is for conn") }
        guard config.publishers >= 0, config.subscribers >= 0, config.connections >= 1,
              config.publishers + config.subscribers <= 100_000, config.connections <= 1_000_000 else {
            throw UsageError(description: "client counts out of range")
        }
        if scenario.isSelfContained && (config.publishers < 1 || config.subscribers < 1) {
            throw UsageError(description: "\(scenario.rawValue) needs at least one publisher and one subscriber")
        }
        if scenario == .pub && config.publishers < 1 { throw UsageError(description: "pub needs --publishers ≥ 1") }
        if scenario == .sub && config.subscribers < 1 { throw UsageError(description: "sub needs --subscribers ≥ 1") }
        if let rate, !(rate > 0 && rate.isFinite) { throw UsageError(description: "--rate must be a positive number") }
        config.rate = rate
        guard connectRate > 0, connectRate.isFinite else { throw UsageError(description: "--connect-rate must be positive") }
        config.connectRate = connectRate
        guard duration > 0, duration <= 86_400, warmup >= 0, warmup <= 3600, drain >= 0, drain <= 3600 else {
            throw UsageError(description: "--duration must be > 0, --warmup and --drain ≥ 0")
        }
        config.durationSeconds = duration
        config.warmupSeconds = warmup
        config.drainSeconds = drain
        guard (1...65535).contains(inflight) else { throw UsageError(description: "--inflight must be 1-65535") }
        config.inflight = inflight
        guard (maxBacklog ?? 0) >= 0 else { throw UsageError(description: "--max-backlog must be ≥ 0") }
        config.maxBacklog = maxBacklog
        guard (1...256).contains(threads) else { throw UsageError(description: "--threads must be 1-256") }
        config.threads = threads
        guard (0...65535).contains(keepAlive) else { throw UsageError(description: "--keep-alive must be 0-65535") }
        config.keepAlive = UInt16(keepAlive)
        config.persistentSessions = persistentSessions
        if let topic {
            guard scenario == .pub || scenario == .sub else { throw UsageError(description: "--topic is for pub and sub") }
            do throws(TopicRules.FilterError) {
                try TopicRules.validateFilter(topic.replacingOccurrences(of: "%i", with: "0"), limits: nil)
            } catch {
                throw UsageError(description: "--topic '\(topic)': \(error)")
            }
            if scenario == .pub && (topic.contains("+") || topic.contains("#")) {
                throw UsageError(description: "--topic for pub is a topic name: no wildcards")
            }
        }
        config.topic = topic
        guard !topicPrefix.isEmpty, !topicPrefix.contains("+"), !topicPrefix.contains("#") else {
            throw UsageError(description: "--topic-prefix must be a non-empty topic name")
        }
        config.topicPrefix = topicPrefix
        if sparkplug {
            guard scenario == .fanin else { throw UsageError(description: "--sparkplug is for fanin") }
            guard size >= SparkplugBenchPayload.minimumSize else {
                throw UsageError(description: "--sparkplug needs --size of at least \(SparkplugBenchPayload.minimumSize)")
            }
        }
        config.sparkplug = sparkplug
        config.brokerPID = brokerPID
        config.runID = runID
        return config
    }
}
