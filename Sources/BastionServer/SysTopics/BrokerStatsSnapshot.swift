import BastionCore

/// Counts by QoS level.
public struct QoSCounts: Sendable, Hashable {
    public var qos0 = 0
    public var qos1 = 0
    public var qos2 = 0

    public init(qos0: Int = 0, qos1: Int = 0, qos2: Int = 0) {
        self.qos0 = qos0
        self.qos1 = qos1
        self.qos2 = qos2
    }

    public var total: Int { qos0 + qos1 + qos2 }

    public subscript(qos: Int) -> Int {
        switch qos {
        case 0: qos0
        case 1: qos1
        default: qos2
        }
    }
}

/// A point-in-time copy of the broker's counters, from which both the `$SYS` topics and the
/// Prometheus counters are derived (so the two never disagree). Counters are totals since start.
public struct BrokerStatsSnapshot: Sendable, Hashable {
    public var version: String
    public var uptimeSeconds: Int
    /// Clients with an open, CONNACKed connection.
    public var clientsConnected = 0
    /// Persistent sessions without a connection.
    public var clientsDisconnected = 0
    /// Most clients connected at once since start.
    public var clientsMaximum = 0
    /// Sessions that expired since start.
    public var clientsExpired = 0
    /// Network connections accepted since start.
    public var connectionsTotal = 0
    /// All MQTT packets received / sent, when counted; otherwise the PUBLISH counts are used.
    public var packetsReceived: Int?
    public var packetsSent: Int?
    /// PUBLISH packets received from clients, by QoS.
    public var publishReceived = QoSCounts()
    /// PUBLISH packets sent to clients, by QoS.
    public var publishSent = QoSCounts()
    /// Messages dropped, indexed by `DropReason.rawValue`.
    public var dropped = Array(repeating: 0, count: DropReason.allCases.count)
    /// Messages dropped for any reason (full queues, slow consumers, expiry, size, QoS 0 offline).
    public var publishDropped: Int { dropped.reduce(0, +) }
    public var bytesReceived = 0
    public var bytesSent = 0
    public var subscriptions = 0
    public var retainedMessages = 0
    /// Messages held for sessions (queued plus in flight).
    public var storedMessages = 0
    public var storedBytes = 0
    public var storeHealthy = true

    public init(version: String, uptimeSeconds: Int) {
        self.version = version
        self.uptimeSeconds = uptimeSeconds
    }

    public var clientsTotal: Int { clientsConnected + clientsDisconnected }
}
