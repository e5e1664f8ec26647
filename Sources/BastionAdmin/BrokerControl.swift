import BastionSecurity

/// What the admin console needs from the running broker, and nothing more. The console never
/// sees the broker's internals: the server implements this protocol once
/// (`BrokerControlAdapter`), tests implement it with fixed data.
///
/// Methods that walk the broker's state are `async`: the server reads each event loop's
/// connections on that loop, so they may take a hop or two.
public protocol BrokerControl: Sendable {
    /// Connected clients, ordered by client id (at most `limit`).
    func clients(limit: Int) async -> [ClientSummary]
    /// Disconnects the client (5.0: DISCONNECT 0x98 administrative action). False when no client
    /// with that id is connected.
    func kick(clientID: String) async -> Bool
    /// Sessions (connected and offline persistent), ordered by client id.
    func sessions(limit: Int) async -> [SessionSummary]
    /// Subscriptions of connected and offline sessions.
    func subscriptions(limit: Int) async -> [SubscriptionSummary]
    /// Retained messages whose topics match `filter`; nil when `filter` is not a valid topic filter.
    func retained(filter: String, limit: Int) async -> [RetainedSummary]?
    /// Clears the retained message of `topic` (a topic name, no wildcards).
    func deleteRetained(topic: String) async -> RetainedDeletion
    /// Counters for the overview and `/api/v1/stats`.
    func stats() -> BrokerStatsSummary
    /// Prometheus text exposition, nil when metrics are disabled.
    func metricsText() -> String?
    /// Listeners bound and store healthy (`/readyz`).
    func isReady() -> Bool
    /// What the ACL decides for `identity` doing `action` on `topic`, and which rule decided.
    func checkACL(_ query: ACLQuery) -> ACLCheckResult
    /// Lint warnings of the ACL in force.
    func lintACL() -> [String]
    /// Re-reads the password file and the ACL (as SIGHUP does).
    func reloadACL() async -> ReloadOutcome
    /// Re-reads the whole configuration (as SIGHUP does).
    func reloadConfig() async -> ReloadOutcome
    /// The ban list, nil when bans are disabled.
    var bans: BanList? { get }
    /// The audit log the console records its own events in.
    var audit: AuditLog { get }
    /// The newest audit records (newest last), filtered.
    func auditTail(_ query: AuditQuery) async -> [String]
    /// Alerts raised since start (newest last).
    func alerts(limit: Int) -> [AlertSummary]
    /// TLS certificates the broker serves, for the admin's certificate page.
    func certificates() -> [CertificateSummary]
    /// Bridge links; nil until a bridge module installs a provider.
    var bridges: (any BridgeInventoryProvider)? { get }
    /// Sparkplug edge-node inventory; nil until a provider is installed.
    var sparkplug: (any SparkplugInventoryProvider)? { get }
}

/// Bridges to other brokers, when a bridge module is present.
public protocol BridgeInventoryProvider: Sendable {
    func bridges() async -> [BridgeSummary]
}

/// Sparkplug B edge nodes and devices seen, when the Sparkplug module is wired in.
public protocol SparkplugInventoryProvider: Sendable {
    func edgeNodes() async -> [SparkplugNodeSummary]
    /// The whole inventory and its counters as a JSON object (`GET /api/v1/sparkplug`).
    func inventoryJSON() async -> String
}

public struct ClientSummary: Sendable, Hashable, Codable {
    public var client_id: String
    /// The authenticated user name or certificate identity; nil for anonymous clients.
    public var identity: String?
    public var username: String?
    /// "192.0.2.1:50000"
    public var address: String
    /// "3.1", "3.1.1" or "5.0".
    public var protocol_version: String
    public var listener: String
    /// TLS version, nil on plain connections.
    public var tls: String?
    public var tls_cipher: String?
    public var subscriptions: [String]
    public var connected_seconds: Int

    public init(client_id: String, identity: String?, username: String?, address: String, protocol_version: String, listener: String,
                tls: String?, tls_cipher: String? = nil, subscriptions: [String], connected_seconds: Int) {
        self.client_id = client_id
        self.identity = identity
        self.username = username
        self.address = address
        self.protocol_version = protocol_version
        self.listener = listener
        self.tls = tls
        self.tls_cipher = tls_cipher
        self.subscriptions = subscriptions
        self.connected_seconds = connected_seconds
    }
}

public struct SessionSummary: Sendable, Hashable, Codable {
    public var client_id: String
    public var owner: String
    public var connected: Bool
    public var persistent: Bool
    /// Messages waiting for the session while it is offline (queued, not yet sent).
    public var queued_messages: Int
    public var subscriptions: Int

    public init(client_id: String, owner: String, connected: Bool, persistent: Bool, queued_messages: Int, subscriptions: Int) {
        self.client_id = client_id
        self.owner = owner
        self.connected = connected
        self.persistent = persistent
        self.queued_messages = queued_messages
        self.subscriptions = subscriptions
    }
}

public struct SubscriptionSummary: Sendable, Hashable, Codable {
    public var client_id: String
    public var filter: String
    public var qos: Int
    /// The `$share` group, nil for ordinary subscriptions.
    public var share_group: String?
    public var connected: Bool

    public init(client_id: String, filter: String, qos: Int, share_group: String?, connected: Bool) {
        self.client_id = client_id
        self.filter = filter
        self.qos = qos
        self.share_group = share_group
        self.connected = connected
    }
}

public struct RetainedSummary: Sendable, Hashable, Codable {
    public var topic: String
    public var qos: Int
    public var bytes: Int
    /// The payload when it is short UTF-8 text, else nil (binary or long payloads are not shown).
    public var preview: String?

    public init(topic: String, qos: Int, bytes: Int, preview: String?) {
        self.topic = topic
        self.qos = qos
        self.bytes = bytes
        self.preview = preview
    }
}

public enum RetainedDeletion: Sendable, Hashable {
    case deleted
    case notFound
    case invalidTopic
}

public struct BrokerStatsSummary: Sendable, Hashable, Codable {
    public var version: String
    public var uptime_seconds: Int
    public var clients_connected: Int
    public var clients_maximum: Int
    public var sessions_offline: Int
    public var connections_total: Int
    public var messages_received: Int
    public var messages_sent: Int
    public var messages_dropped: Int
    public var bytes_received: Int
    public var bytes_sent: Int
    public var subscriptions: Int
    public var retained_messages: Int
    public var store_healthy: Bool

    public init(version: String = "", uptime_seconds: Int = 0, clients_connected: Int = 0, clients_maximum: Int = 0,
                sessions_offline: Int = 0, connections_total: Int = 0, messages_received: Int = 0, messages_sent: Int = 0,
                messages_dropped: Int = 0, bytes_received: Int = 0, bytes_sent: Int = 0, subscriptions: Int = 0,
                retained_messages: Int = 0, store_healthy: Bool = true) {
        self.version = version
        self.uptime_seconds = uptime_seconds
        self.clients_connected = clients_connected
        self.clients_maximum = clients_maximum
        self.sessions_offline = sessions_offline
        self.connections_total = connections_total
        self.messages_received = messages_received
        self.messages_sent = messages_sent
        self.messages_dropped = messages_dropped
        self.bytes_received = bytes_received
        self.bytes_sent = bytes_sent
        self.subscriptions = subscriptions
        self.retained_messages = retained_messages
        self.store_healthy = store_healthy
    }
}

public struct ACLQuery: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
        case publish, subscribe, read
    }

    public var username: String?
    public var client_id: String
    public var certificate: String?
    public var topic: String
    public var action: Action

    public init(username: String?, client_id: String, certificate: String? = nil, topic: String, action: Action) {
        self.username = username
        self.client_id = client_id
        self.certificate = certificate
        self.topic = topic
        self.action = action
    }
}

public struct ACLCheckResult: Sendable, Hashable, Codable {
    public var allowed: Bool
    /// The rule that decided, e.g. "acl_file:12" or "default deny".
    public var rule: String

    public init(allowed: Bool, rule: String) {
        self.allowed = allowed
        self.rule = rule
    }
}

public struct ReloadOutcome: Sendable, Hashable, Codable {
    public var ok: Bool
    /// Why the reload was rejected (the running configuration stays), nil on success.
    public var error: String?

    public init(ok: Bool, error: String? = nil) {
        self.ok = ok
        self.error = error
    }
}

public struct AuditQuery: Sendable, Hashable {
    /// Only records of this event (`auth_failure`, `admin_action`, …).
    public var event: String?
    /// Only records containing this text.
    public var contains: String?
    public var limit: Int

    public init(event: String? = nil, contains: String? = nil, limit: Int = 100) {
        self.event = event
        self.contains = contains
        self.limit = limit
    }
}

public struct AlertSummary: Sendable, Hashable, Codable {
    /// RFC 3339 UTC.
    public var at: String
    public var kind: String
    public var count: Int
    public var threshold: Int
    public var subject: String?

    public init(at: String, kind: String, count: Int, threshold: Int, subject: String?) {
        self.at = at
        self.kind = kind
        self.count = count
        self.threshold = threshold
        self.subject = subject
    }
}

public struct CertificateSummary: Sendable, Hashable, Codable {
    public var listener: String
    public var subject: String
    public var issuer: String
    /// RFC 3339 UTC.
    public var not_after: String
    public var days_left: Int

    public init(listener: String, subject: String, issuer: String, not_after: String, days_left: Int) {
        self.listener = listener
        self.subject = subject
        self.issuer = issuer
        self.not_after = not_after
        self.days_left = days_left
    }
}

public struct BridgeSummary: Sendable, Hashable, Codable {
    public var name: String
    public var remote: String
    public var connected: Bool

    public init(name: String, remote: String, connected: Bool) {
        self.name = name
        self.remote = remote
        self.connected = connected
    }
}

public struct SparkplugNodeSummary: Sendable, Hashable, Codable {
    public var group: String
    public var edge_node: String
    public var online: Bool
    public var devices: [String]

    public init(group: String, edge_node: String, online: Bool, devices: [String]) {
        self.group = group
        self.edge_node = edge_node
        self.online = online
        self.devices = devices
    }
}
