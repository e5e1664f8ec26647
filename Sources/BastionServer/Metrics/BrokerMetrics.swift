import BastionCore
import BastionSecurity
import CoreMetrics
import Prometheus
import Synchronization

/// The broker's metrics as swift-metrics handles backed by a Prometheus registry, with help text.
///
/// Hot-path totals (messages, bytes, connections) are not incremented per packet here: the broker
/// already counts them, and `observe(_:)` advances these counters from a `BrokerStatsSnapshot`
/// just before each scrape. Rare security events (auth failures, ACL denials, bans, refusals,
/// alerts) are counted directly through the methods below.
public final class BrokerMetrics: ProtectionMetrics {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    // Derived from snapshots.
    private let connectionsCurrent: Meter
    private let connectionsTotal: CoreMetrics.Counter
    private let received: [CoreMetrics.Counter]
    private let sent: [CoreMetrics.Counter]
    private let dropped: [CoreMetrics.Counter]
    private let bytesReceived: CoreMetrics.Counter
    private let bytesSent: CoreMetrics.Counter
    private let sessions: Meter
    private let subscriptions: Meter
    private let queued: Meter
    private let retained: Meter
    private let storeHealthy: Meter
    private let uptime: Meter

    // Counted directly.
    private let authFailures: CoreMetrics.Counter
    private let aclDenials: [AuditEvent.AuthorizationDenied.Operation: CoreMetrics.Counter]
    private let bans: [BanOrigin: CoreMetrics.Counter]
    private let bansActive: Meter
    private let bansSuppressed: CoreMetrics.Counter
    private let failureTrackerKeys: Meter
    private let failureTrackerBytes: Meter
    private let refused: [RefusalReason: CoreMetrics.Counter]
    private let limits: [AuditEvent.LimitReached.Limit: CoreMetrics.Counter]
    private let throttled: CoreMetrics.Counter
    private let alerts: [Alert.Kind: CoreMetrics.Counter]
    private let auditDropped: CoreMetrics.Counter
    private let eventLoopLatency: CoreMetrics.Timer

    /// Last snapshot totals folded into the counters.
    private let last = Mutex(Totals())
    /// Per bridge and counter, the total last folded in (see `observeBridge`).
    private let bridgeTotals = Mutex<[String: Int]>([:])

    private struct Totals {
        var connections = 0
        var received = [0, 0, 0]
        var sent = [0, 0, 0]
        var dropped = Array(repeating: 0, count: DropReason.allCases.count)
        var bytesReceived = 0
        var bytesSent = 0
        var auditDropped = 0
    }

    /// Event-loop latency buckets: a healthy loop answers in microseconds; a blocked one in
    /// tens of milliseconds or more.
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1),
    ]

    /// Metrics in `registry` (the process registry by default; tests pass their own).
    public init(registry: PrometheusCollectorRegistry = MetricsBootstrap.registry) {
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        typealias N = MetricNames

        // The full name goes in `metricName`; an empty unit adds no suffix.
        func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name, dimensions: labels,
                                handler: registry.makeCounter(descriptor: descriptor(name, help), labels: labels), factory: factory)
        }
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Meter {
            Meter(label: name, dimensions: labels,
                  handler: registry.makeGauge(descriptor: descriptor(name, help), labels: labels), factory: factory)
        }

        connectionsCurrent = gauge(N.connectionsCurrent, "Clients connected now.")
        connectionsTotal = counter(N.connectionsTotal, "Network connections accepted since start.")
        received = (0...2).map { counter(N.messagesReceived, "PUBLISH packets received from clients.", [("qos", "\($0)")]) }
        sent = (0...2).map { counter(N.messagesSent, "PUBLISH packets sent to clients.", [("qos", "\($0)")]) }
        dropped = DropReason.allCases.map {
            counter(N.messagesDropped, "Messages accepted but not delivered to a subscriber, by reason.", [("reason", $0.name)])
        }
        bytesReceived = counter(N.bytesReceived, "Bytes received from clients.")
        bytesSent = counter(N.bytesSent, "Bytes sent to clients.")
        sessions = gauge(N.sessions, "Sessions, connected and persistent offline.")
        subscriptions = gauge(N.subscriptions, "Subscriptions.")
        queued = gauge(N.queuedMessages, "Messages held for sessions (queued and in flight).")
        retained = gauge(N.retainedMessages, "Retained messages.")
        storeHealthy = gauge(N.storeHealthy, "1 when the persistent store accepts writes, else 0.")
        uptime = gauge(N.uptime, "Seconds since the broker started.")

        authFailures = counter(N.authFailures, "Failed authentications.")
        aclDenials = Dictionary(uniqueKeysWithValues: [AuditEvent.AuthorizationDenied.Operation.publish, .subscribe, .receive].map {
            ($0, counter(N.aclDenials, "Operations refused by the ACL.", [("operation", $0.rawValue)]))
        })
        bans = Dictionary(uniqueKeysWithValues: [BanOrigin.config, .manual, .authFailures, .flapping, .protocolViolations].map {
            ($0, counter(N.bans, "Bans issued.", [("origin", $0.rawValue)]))
        })
        bansSuppressed = counter(N.bansSuppressed, "Automatic bans not applied because the address is in trusted_networks.")
        failureTrackerKeys = gauge(N.failureTrackerKeys, "Keys held by the failed-authentication and flapping counters.")
        failureTrackerBytes = gauge(N.failureTrackerBytes, "Estimated memory held by the failed-authentication counters.")
        bansActive = gauge(N.bansActive, "Bans in force.")
        refused = Dictionary(uniqueKeysWithValues: [RefusalReason.banned, .tooManyTotal, .tooManyPerAddress, .rateExceeded].map {
            ($0, counter(N.connectionsRefused, "Sockets closed at accept time.", [("reason", $0.rawValue)]))
        })
        limits = Dictionary(uniqueKeysWithValues: AuditEvent.LimitReached.Limit.allCases.map {
            ($0, counter(N.limitsReached, "Times a configured limit was reached.", [("limit", $0.rawValue)]))
        })
        throttled = counter(N.publishThrottled, "Times a publisher was paused for exceeding its rate.")
        alerts = Dictionary(uniqueKeysWithValues: Alert.Kind.allCases.map {
            ($0, counter(N.alerts, "Alerts raised.", [("kind", $0.rawValue)]))
        })
        auditDropped = counter(N.auditDropped, "Audit records lost because the audit queue was full.")
        eventLoopLatency = CoreMetrics.Timer(
            label: N.eventLoopLatency, dimensions: [],
            handler: registry.makeDurationHistogram(
                descriptor: descriptor(N.eventLoopLatency, "Delay between when a periodic event-loop task was due and when it ran."),
                labels: [], buckets: Self.latencyBuckets),
            factory: factory)
        storeHealthy.set(1)
    }

    // MARK: Snapshot-derived

    /// Brings the snapshot-derived metrics up to `stats` (call before rendering). Counters only
    /// move forward: a total lower than last time is ignored.
    public func observe(_ stats: BrokerStatsSnapshot, auditDropped auditDroppedTotal: Int? = nil) {
        connectionsCurrent.set(stats.clientsConnected)
        sessions.set(stats.clientsTotal)
        subscriptions.set(stats.subscriptions)
        queued.set(stats.storedMessages)
        retained.set(stats.retainedMessages)
        storeHealthy.set(stats.storeHealthy ? 1 : 0)
        uptime.set(stats.uptimeSeconds)
        last.withLock { last in
            func advance(_ counter: CoreMetrics.Counter, _ previous: inout Int, _ now: Int) {
                if now > previous {
                    counter.increment(by: now - previous)
                    previous = now
                }
            }
            advance(connectionsTotal, &last.connections, stats.connectionsTotal)
            for qos in 0...2 {
                advance(received[qos], &last.received[qos], stats.publishReceived[qos])
                advance(sent[qos], &last.sent[qos], stats.publishSent[qos])
            }
            for reason in DropReason.allCases {
                advance(dropped[reason.rawValue], &last.dropped[reason.rawValue], stats.dropped[reason.rawValue])
            }
            advance(bytesReceived, &last.bytesReceived, stats.bytesReceived)
            advance(bytesSent, &last.bytesSent, stats.bytesSent)
            if let auditDroppedTotal { advance(auditDropped, &last.auditDropped, auditDroppedTotal) }
        }
    }

    /// One bridge's state (series labelled `bridge`, created on first use).
    func observeBridge(
        name: String, connected: Bool, queuedMessages: Int, queuedBytes: Int, forwarded: Int, received: Int, dropped: [String: Int],
        oldestQueuedAge: Int
    ) {
        typealias N = MetricNames
        let labels = [("bridge", name)]
        registry.makeGauge(name: N.bridgeConnected, labels: labels, help: "1 while the bridge is connected to a remote broker.")
            .set(Int64(connected ? 1 : 0))
        registry.makeGauge(name: N.bridgeQueuedMessages, labels: labels, help: "Messages waiting for the bridge's remote (stored and in flight).")
            .set(Int64(queuedMessages))
        registry.makeGauge(name: N.bridgeQueuedBytes, labels: labels, help: "Topic and payload bytes waiting for the bridge's remote.")
            .set(Int64(queuedBytes))
        registry.makeGauge(name: N.bridgeOldestQueuedAge, labels: labels, help: "Seconds the oldest message waiting for the bridge's remote has waited.")
            .set(Int64(oldestQueuedAge))
        bridgeTotals.withLock { totals in
            func advance(_ metric: String, _ extra: [(String, String)], _ help: String, _ now: Int) {
                let key = ([name, metric] + extra.map(\.1)).joined(separator: "\u{0}")
                let previous = totals[key] ?? 0
                guard now > previous else { return }
                registry.makeCounter(name: metric, labels: labels + extra, help: help).increment(by: Int64(now - previous))
                totals[key] = now
            }
            advance(N.bridgeForwarded, [], "Messages the remote acknowledged (QoS 1) or that were written to it (QoS 0).", forwarded)
            advance(N.bridgeReceived, [], "Remote messages the bridge published locally.", received)
            for (reason, count) in dropped.sorted(by: { $0.key < $1.key }) {
                advance(N.bridgeDropped, [("reason", reason)], "Messages the bridge did not forward, by reason.", count)
            }
        }
    }

    // MARK: Events

    public func authFailed() { authFailures.increment() }

    public func aclDenied(_ operation: AuditEvent.AuthorizationDenied.Operation) { aclDenials[operation]?.increment() }

    public func connectionRefused(_ reason: RefusalReason) { refused[reason]?.increment() }

    public func limitReached(_ limit: AuditEvent.LimitReached.Limit) { limits[limit]?.increment() }

    public func publishThrottled() { throttled.increment() }

    public func alertRaised(_ kind: Alert.Kind) { alerts[kind]?.increment() }

    /// Counts ban list changes and refreshes the active-bans gauge.
    public func banEvent(_ event: BanEvent, activeBans: Int) {
        switch event {
        case .banned(let entry): bans[entry.origin]?.increment()
        case .suppressed: bansSuppressed.increment()
        case .unbanned: break
        }
        bansActive.set(activeBans)
    }

    public func failureTracker(_ usage: (keys: Int, bytes: Int)) {
        failureTrackerKeys.set(usage.keys)
        failureTrackerBytes.set(usage.bytes)
    }

    public func setActiveBans(_ count: Int) { bansActive.set(count) }

    /// One event-loop latency sample.
    public func eventLoopLatency(_ delay: Duration) {
        let c = delay.components
        let nanos = c.seconds > Int64.max / 1_000_000_000 ? Int64.max : c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
        eventLoopLatency.recordNanoseconds(max(0, nanos))
    }

    // MARK: Exposition

    /// The registry in Prometheus text exposition format 0.0.4.
    public func prometheusText() -> String {
        registry.emitToString()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
