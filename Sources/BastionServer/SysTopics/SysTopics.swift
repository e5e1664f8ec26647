import BastionCore
import BastionSecurity
import Foundation

/// One `$SYS` value: the lead publishes it as a retained message.
public struct SysTopicMessage: Sendable, Hashable {
    public var topic: String
    public var payload: String

    public init(_ topic: String, _ payload: String) {
        self.topic = topic
        self.payload = payload
    }
}

/// The `$SYS/broker/...` tree, with Mosquitto's topic names and payload formats where Mosquitto
/// has them, so existing dashboards keep working. Pure: snapshot in, messages out.
public enum SysTopics {
    public static let alertsTopic = "$SYS/bastion/alerts"

    /// Every value of the tree for `stats` (load averages excluded: see `SysTopicPublisher`).
    public static func snapshot(_ stats: BrokerStatsSnapshot) -> [SysTopicMessage] {
        let packetsReceived = stats.packetsReceived ?? stats.publishReceived.total
        let packetsSent = stats.packetsSent ?? stats.publishSent.total
        func m(_ suffix: String, _ value: Int) -> SysTopicMessage { SysTopicMessage("$SYS/broker/" + suffix, String(value)) }
        return [
            SysTopicMessage("$SYS/broker/version", "bastion version \(stats.version)"),
            SysTopicMessage("$SYS/broker/uptime", "\(stats.uptimeSeconds) seconds"),
            m("clients/connected", stats.clientsConnected),
            m("clients/active", stats.clientsConnected),
            m("clients/disconnected", stats.clientsDisconnected),
            m("clients/inactive", stats.clientsDisconnected),
            m("clients/total", stats.clientsTotal),
            m("clients/maximum", stats.clientsMaximum),
            m("clients/expired", stats.clientsExpired),
            m("messages/received", packetsReceived),
            m("messages/sent", packetsSent),
            m("messages/stored", stats.storedMessages),
            m("store/messages/count", stats.storedMessages),
            m("store/messages/bytes", stats.storedBytes),
            m("publish/messages/received", stats.publishReceived.total),
            m("publish/messages/sent", stats.publishSent.total),
            m("publish/messages/dropped", stats.publishDropped),
            m("bytes/received", stats.bytesReceived),
            m("bytes/sent", stats.bytesSent),
            m("subscriptions/count", stats.subscriptions),
            m("retained messages/count", stats.retainedMessages),
        ] + DropReason.allCases.map { m("publish/messages/dropped/\($0.name)", stats.dropped[$0.rawValue]) }
    }

    /// The JSON published on `$SYS/bastion/alerts` (same fields as the audit `alert` record).
    public static func alertPayload(_ alert: Alert, timestamp: Int64 = RFC3339.nowMilliseconds()) -> String {
        alert.payload(timestamp: timestamp)
    }
}

/// Mosquitto's `$SYS/broker/load/...` values: exponentially weighted per-minute rates over 1, 5
/// and 15 minutes, updated at each publication interval (same formula as Mosquitto's sys_tree.c).
public struct SysLoadAverages: Sendable, Hashable {
    public static let series = [
        "messages/received", "messages/sent", "publish/received", "publish/sent", "publish/dropped",
        "bytes/received", "bytes/sent", "connections", "sockets",
    ]
    private static let horizons: [(name: String, seconds: Double)] = [("1min", 60), ("5min", 300), ("15min", 900)]

    private var last: [String: Int] = [:]
    private var averages: [String: Double] = [:]

    public init() {}

    private static func values(_ s: BrokerStatsSnapshot) -> [String: Int] {
        [
            "messages/received": s.packetsReceived ?? s.publishReceived.total,
            "messages/sent": s.packetsSent ?? s.publishSent.total,
            "publish/received": s.publishReceived.total,
            "publish/sent": s.publishSent.total,
            "publish/dropped": s.publishDropped,
            "bytes/received": s.bytesReceived,
            "bytes/sent": s.bytesSent,
            "connections": s.connectionsTotal,
            "sockets": s.connectionsTotal,
        ]
    }

    /// Folds in the counters after `interval`; returns the load topics.
    public mutating func update(_ stats: BrokerStatsSnapshot, interval: Duration) -> [SysTopicMessage] {
        let seconds = max(interval.seconds, 0.001)
        let current = Self.values(stats)
        var out: [SysTopicMessage] = []
        for name in Self.series {
            let value = current[name] ?? 0
            // The first sample only sets the baseline; a counter that went backwards counts as 0.
            let delta = last[name].map { max(0, value - $0) } ?? 0
            last[name] = value
            for horizon in Self.horizons {
                let key = "\(name)/\(horizon.name)"
                let exponent = exp(-seconds / horizon.seconds)
                let rate = Double(delta) * 60 / seconds
                let updated = exponent * (averages[key] ?? 0) + (1 - exponent) * rate
                averages[key] = updated
                out.append(SysTopicMessage("$SYS/broker/load/\(key)", String(format: "%.2f", updated)))
            }
        }
        return out
    }
}

/// Produces what to publish each interval: like Mosquitto, only values that changed since the last
/// publication (uptime and load always change).
public struct SysTopicPublisher: Sendable {
    private var published: [String: String] = [:]
    private var load = SysLoadAverages()
    private var lastUpdate: MonotonicInstant?

    public init() {}

    public mutating func update(_ stats: BrokerStatsSnapshot, now: MonotonicInstant) -> [SysTopicMessage] {
        var messages = SysTopics.snapshot(stats)
        if let lastUpdate, now > lastUpdate {
            messages += load.update(stats, interval: now - lastUpdate)
        } else {
            _ = load.update(stats, interval: .seconds(1))
        }
        lastUpdate = now
        var changed: [SysTopicMessage] = []
        for message in messages where published[message.topic] != message.payload {
            published[message.topic] = message.payload
            changed.append(message)
        }
        return changed
    }
}
