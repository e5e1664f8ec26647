import BastionCore

/// One security event for the audit log. Each case encodes to a flat JSON object with `ts`,
/// `event` and the fields documented in docs/audit-log.md (the schema is `AuditSchema`).
///
/// There is deliberately no case or field that can carry a password, a message payload or any
/// other secret: what the audit log may say is fixed by these types.
public enum AuditEvent: Sendable, Hashable {
    case started(Started)
    case shutdown(Shutdown)
    case connectionAccepted(ConnectionAccepted)
    case connectionRefused(ConnectionRefused)
    case authFailure(AuthFailure)
    case authorizationDenied(AuthorizationDenied)
    case ban(BanIssued)
    case unban(BanLifted)
    case limitReached(LimitReached)
    case configReload(ConfigReload)
    case alert(AlertRaised)
    case banSuppressed(BanSuppressed)
    case sessionHijackRefused(SessionHijackRefused)
    /// A Sparkplug NCMD or DCMD, accepted or refused.
    case sparkplugCommand(SparkplugCommand)
    /// A Sparkplug birth or death whose payload does not decode (it was still forwarded).
    case sparkplugPayloadInvalid(SparkplugPayloadInvalid)
    /// A login to the admin console, successful or not.
    case adminLogin(AdminLogin)
    /// Something done through the admin console or its API (or refused for lack of a role).
    case adminAction(AdminAction)
    /// A bridge's link to a remote broker came up, went down, was refused, found no remote, or
    /// dropped queued messages for lack of room.
    case bridge(BridgeLink)
    /// Written by the audit log itself when records were lost because its queue was full.
    case recordsDropped(count: Int)

    /// The `event` field.
    public var name: String {
        switch self {
        case .started: "start"
        case .shutdown: "shutdown"
        case .connectionAccepted: "connection_accepted"
        case .connectionRefused: "connection_refused"
        case .authFailure: "auth_failure"
        case .authorizationDenied: "authz_denied"
        case .ban: "ban"
        case .unban: "unban"
        case .limitReached: "limit_reached"
        case .configReload: "config_reload"
        case .alert: "alert"
        case .banSuppressed: "ban_suppressed"
        case .sessionHijackRefused: "session_hijack_refused"
        case .sparkplugCommand: "sparkplug_command"
        case .sparkplugPayloadInvalid: "sparkplug_payload_invalid"
        case .adminLogin: "admin_login"
        case .adminAction: "admin_action"
        case .bridge(let e): "bridge_" + e.kind.rawValue
        case .recordsDropped: "audit_dropped"
        }
    }
}

/// Where a connection comes from, as every connection-related record names it.
public struct AuditPeer: Sendable, Hashable {
    /// Listener URL, e.g. "mqtts://0.0.0.0:8883".
    public var listener: String?
    public var ip: String?
    public var port: Int?

    public init(listener: String?, ip: String?, port: Int?) {
        self.listener = listener
        self.ip = ip
        self.port = port
    }

    /// From "192.0.2.1:50000" / "[2001:db8::1]:50000" as the server describes remote addresses.
    public init(listener: String?, remoteAddress: String) {
        self.listener = listener
        var host = Substring(remoteAddress)
        var port: Int?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let rest = host[host.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            port = Int(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        self.ip = host.isEmpty || host == "unknown" ? nil : String(host)
        self.port = port
    }
}

extension AuditEvent {
    public struct Started: Sendable, Hashable {
        public var version: String
        public var listeners: [String]
        public var configPath: String?
        public var pid: Int

        public init(version: String, listeners: [String], configPath: String?, pid: Int) {
            self.version = version
            self.listeners = listeners
            self.configPath = configPath
            self.pid = pid
        }
    }

    public struct Shutdown: Sendable, Hashable {
        public enum Cause: String, Sendable, Hashable {
            /// SIGTERM / SIGINT.
            case signal
            /// A runtime failure ends the process.
            case failure
        }

        public var cause: Cause
        public var uptimeSeconds: Int

        public init(cause: Cause, uptimeSeconds: Int) {
            self.cause = cause
            self.uptimeSeconds = uptimeSeconds
        }
    }

    public struct ConnectionAccepted: Sendable, Hashable {
        public var peer: AuditPeer
        public var clientID: String
        public var username: String?
        /// The identity ACLs apply to (user name or certificate identity).
        public var identity: String?
        /// "3.1", "3.1.1" or "5.0".
        public var protocolVersion: String
        public var tlsVersion: String?
        public var tlsCipher: String?
        public var certificateSerial: String?
        public var cleanStart: Bool

        public init(peer: AuditPeer, clientID: String, username: String?, identity: String?, protocolVersion: String,
                    tlsVersion: String? = nil, tlsCipher: String? = nil, certificateSerial: String? = nil, cleanStart: Bool) {
            self.peer = peer
            self.clientID = clientID
            self.username = username
            self.identity = identity
            self.protocolVersion = protocolVersion
            self.tlsVersion = tlsVersion
            self.tlsCipher = tlsCipher
            self.certificateSerial = certificateSerial
            self.cleanStart = cleanStart
        }
    }

    /// A socket closed at accept time, before TLS or MQTT.
    public struct ConnectionRefused: Sendable, Hashable {
        public var peer: AuditPeer
        public var reason: RefusalReason

        public init(peer: AuditPeer, reason: RefusalReason) {
            self.peer = peer
            self.reason = reason
        }
    }

    public struct AuthFailure: Sendable, Hashable {
        public typealias Reason = AuthenticationFailureReason

        public var peer: AuditPeer
        public var clientID: String?
        public var username: String?
        public var reason: Reason
        public var protocolVersion: String?

        public init(peer: AuditPeer, clientID: String?, username: String?, reason: Reason, protocolVersion: String? = nil) {
            self.peer = peer
            self.clientID = clientID
            self.username = username
            self.reason = reason
            self.protocolVersion = protocolVersion
        }
    }

    public struct AuthorizationDenied: Sendable, Hashable {
        public enum Operation: String, Sendable, Hashable {
            case publish
            case subscribe
            /// Delivery of a matching message to a subscriber was denied.
            case receive
        }

        public var peer: AuditPeer
        public var clientID: String
        public var username: String?
        public var operation: Operation
        /// Topic name (publish, receive) or topic filter (subscribe).
        public var topic: String
        /// Which rule decided, e.g. "acl_file:12" or "default deny".
        public var rule: String?

        public init(peer: AuditPeer, clientID: String, username: String?, operation: Operation, topic: String, rule: String?) {
            self.peer = peer
            self.clientID = clientID
            self.username = username
            self.operation = operation
            self.topic = topic
            self.rule = rule
        }
    }

    public struct BanIssued: Sendable, Hashable {
        public var subjectType: String
        public var subject: String
        public var origin: BanOrigin
        /// Nil: until removed.
        public var durationSeconds: Double?
        public var offence: Int
        public var note: String?

        public init(subjectType: String, subject: String, origin: BanOrigin, durationSeconds: Double?, offence: Int, note: String?) {
            self.subjectType = subjectType
            self.subject = subject
            self.origin = origin
            self.durationSeconds = durationSeconds
            self.offence = offence
            self.note = note
        }

        public init(_ entry: BanEntry) {
            self.init(subjectType: entry.subject.kind, subject: entry.subject.value, origin: entry.origin,
                      durationSeconds: entry.duration?.seconds, offence: entry.offence, note: entry.note)
        }
    }

    public struct BanLifted: Sendable, Hashable {
        public var subjectType: String
        public var subject: String
        public var cause: UnbanCause

        public init(subject: BanSubject, cause: UnbanCause) {
            self.subjectType = subject.kind
            self.subject = subject.value
            self.cause = cause
        }
    }

    public struct LimitReached: Sendable, Hashable {
        public enum Limit: String, Sendable, Hashable, CaseIterable {
            // Limits checked at accept time are reported as `connection_refused`.
            case connectTimeout = "connect_timeout"
            case packetSize = "packet_size"
            case publishRate = "publish_rate"
            case subscriptions
            case inflight
            case queuedMessages = "queued_messages"
            case queuedBytes = "queued_bytes"
            case retainedMessages = "retained_messages"
            case retainedBytes = "retained_bytes"
            case topicLength = "topic_length"
            case topicLevels = "topic_levels"
            case topicAlias = "topic_alias"
            /// A CONNECT larger than `max_connect_packet_size`.
            case connectPacketSize = "connect_packet_size"
            /// A CONNECT arriving slower than the minimum byte rate.
            case connectRate = "connect_rate"
            /// Replies and deliveries the client does not read: over the outbound budget or
            /// unwritable for too long.
            case outboundBudget = "outbound_budget"
            /// Topic filter longer than `max_filter_length`.
            case filterLength = "filter_length"
        }

        public enum Action: String, Sendable, Hashable, CaseIterable {
            /// The connection was closed before MQTT started (connect timeout).
            case refused
            /// Reading paused (backpressure).
            case throttled
            /// The client was disconnected.
            case disconnected
            /// A message or subscription was refused; the client stays connected.
            case rejected
            /// A message was dropped.
            case dropped
        }

        public var limit: Limit
        public var action: Action
        public var peer: AuditPeer
        public var clientID: String?
        public var username: String?
        /// The observed value, when meaningful (packet size, queue length, ...).
        public var value: Int?
        /// The configured maximum.
        public var maximum: Int?

        public init(limit: Limit, action: Action, peer: AuditPeer, clientID: String? = nil, username: String? = nil,
                    value: Int? = nil, maximum: Int? = nil) {
            self.limit = limit
            self.action = action
            self.peer = peer
            self.clientID = clientID
            self.username = username
            self.value = value
            self.maximum = maximum
        }
    }

    public struct ConfigReload: Sendable, Hashable {
        public enum Outcome: String, Sendable, Hashable {
            case success
            case rejected
        }

        public var outcome: Outcome
        public var path: String?
        /// Why the new configuration was rejected (the running one stays).
        public var error: String?

        public init(outcome: Outcome, path: String?, error: String?) {
            self.outcome = outcome
            self.path = path
            self.error = error
        }
    }

    public struct AlertRaised: Sendable, Hashable {
        public var kind: Alert.Kind
        public var count: Int
        public var threshold: Int
        public var windowSeconds: Double
        public var subject: String?

        public init(_ alert: Alert) {
            kind = alert.kind
            count = alert.count
            threshold = alert.threshold
            windowSeconds = alert.window.seconds
            subject = alert.subject
        }
    }

    /// An automatic ban that was not applied because the address is in a trusted network.
    public struct BanSuppressed: Sendable, Hashable {
        public var subjectType: String
        public var subject: String
        public var origin: BanOrigin

        public init(subject: BanSubject, origin: BanOrigin) {
            self.subjectType = subject.kind
            self.subject = subject.value
            self.origin = origin
        }
    }

    /// A CONNECT for a client id whose session belongs to another identity, refused before the
    /// session was touched.
    public struct SessionHijackRefused: Sendable, Hashable {
        public var peer: AuditPeer
        public var clientID: String
        /// The identity that tried (user name, certificate identity, or anonymous@LISTENER).
        public var identity: String
        /// The identity that owns the session.
        public var owner: String

        public init(peer: AuditPeer, clientID: String, identity: String, owner: String) {
            self.peer = peer
            self.clientID = clientID
            self.identity = identity
            self.owner = owner
        }
    }
}

extension AuditEvent {
    public struct AdminLogin: Sendable, Hashable {
        public enum Method: String, Sendable, Hashable, CaseIterable {
            /// User name and password from the console's user file.
            case password
            /// The second step: a TOTP code.
            case totp
            /// User name and password checked against the directory (`admin.ldap`).
            case ldap
        }

        public enum Outcome: String, Sendable, Hashable, CaseIterable {
            case success
            case failure
            /// Refused without checking: too many recent failures for the user or the address.
            case lockedOut = "locked_out"
        }

        public enum Reason: String, Sendable, Hashable, CaseIterable {
            case badPassword = "bad_password"
            case unknownUser = "unknown_user"
            case badCode = "bad_code"
            /// The directory accepted the password but no group of the user maps to a role.
            case noRole = "no_role"
            /// The directory could not be asked (down, TLS failure, timeout).
            case directoryUnavailable = "directory_unavailable"
            case tooManyFailures = "too_many_failures"
        }

        public var remoteIP: String?
        public var user: String
        public var method: Method
        public var outcome: Outcome
        public var reason: Reason?
        /// The role granted on success.
        public var role: String?

        public init(remoteIP: String?, user: String, method: Method, outcome: Outcome, reason: Reason? = nil, role: String? = nil) {
            self.remoteIP = remoteIP
            self.user = user
            self.method = method
            self.outcome = outcome
            self.reason = reason
            self.role = role
        }
    }

    public struct AdminAction: Sendable, Hashable {
        public enum Action: String, Sendable, Hashable, CaseIterable {
            case clientKick = "client_kick"
            case retainedDelete = "retained_delete"
            case banAdd = "ban_add"
            case banRemove = "ban_remove"
            case aclReload = "acl_reload"
            case configReload = "config_reload"
            case userCreate = "user_create"
            case userDelete = "user_delete"
            case userRole = "user_role"
            case userTOTPReset = "user_totp_reset"
            case totpEnrol = "totp_enrol"
            case tokenCreate = "token_create"
            case tokenDelete = "token_delete"
            case logout
        }

        public enum Via: String, Sendable, Hashable, CaseIterable {
            /// A browser session.
            case session
            /// A bearer token.
            case token
        }

        public enum Outcome: String, Sendable, Hashable, CaseIterable {
            case success
            /// Allowed but it did not happen (no such client, a file could not be written, …).
            case failure
            /// Refused: the user's role does not allow it.
            case denied
        }

        public var remoteIP: String?
        public var user: String
        public var role: String
        public var via: Via
        public var action: Action
        public var target: String?
        public var outcome: Outcome
        public var detail: String?

        public init(remoteIP: String?, user: String, role: String, via: Via, action: Action, target: String?, outcome: Outcome,
                    detail: String? = nil) {
            self.remoteIP = remoteIP
            self.user = user
            self.role = role
            self.via = via
            self.action = action
            self.target = target
            self.outcome = outcome
            self.detail = detail
        }
    }
}

extension AuditEvent {
    /// The audit record for a ban list change.
    public init(_ event: BanEvent) {
        switch event {
        case .banned(let entry): self = .ban(BanIssued(entry))
        case .unbanned(let subject, let cause): self = .unban(BanLifted(subject: subject, cause: cause))
        case .suppressed(let subject, let origin): self = .banSuppressed(BanSuppressed(subject: subject, origin: origin))
        }
    }

    public struct SparkplugCommand: Sendable, Hashable {
        public enum Outcome: String, Sendable, Hashable, CaseIterable {
            case accepted
            case refused
        }

        public enum Signature: String, Sendable, Hashable, CaseIterable {
            /// The group does not require signed commands.
            case notRequired = "not_required"
            case verified
            case missing
            case malformed
            case bad
        }

        public var peer: AuditPeer
        public var clientID: String
        public var username: String?
        public var topic: String
        public var group: String
        public var edgeNode: String
        public var device: String?
        /// Names of the commanded metrics (as many as the decode limits keep); nil when the
        /// payload does not decode.
        public var metrics: [String]?
        public var outcome: Outcome
        /// Why it was refused (the ACL rule, the Sparkplug rule or the signature failure).
        public var reason: String?
        public var signature: Signature

        public init(peer: AuditPeer, clientID: String, username: String?, topic: String, group: String, edgeNode: String,
                    device: String?, metrics: [String]?, outcome: Outcome, reason: String?, signature: Signature) {
            self.peer = peer
            self.clientID = clientID
            self.username = username
            self.topic = topic
            self.group = group
            self.edgeNode = edgeNode
            self.device = device
            self.metrics = metrics
            self.outcome = outcome
            self.reason = reason
            self.signature = signature
        }
    }

    public struct SparkplugPayloadInvalid: Sendable, Hashable {
        public var peer: AuditPeer
        public var clientID: String
        public var topic: String
        public var error: String
        /// Published by the server as the client's will.
        public var will: Bool

        public init(peer: AuditPeer, clientID: String, topic: String, error: String, will: Bool) {
            self.peer = peer
            self.clientID = clientID
            self.topic = topic
            self.error = error
            self.will = will
        }
    }

    public struct BridgeLink: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable, CaseIterable {
            case connected
            case disconnected
            /// The remote answered CONNECT with a refusal.
            case refused
            /// No remote of the bridge could be reached in a round of attempts.
            case unreachable
            /// The bridge's queue was full and its oldest messages were dropped.
            case queueFull = "queue_full"
        }

        public var kind: Kind
        public var bridge: String
        public var remote: String?
        public var reason: String?
        public var dropped: Int?

        public init(kind: Kind, bridge: String, remote: String? = nil, reason: String? = nil, dropped: Int? = nil) {
            self.kind = kind
            self.bridge = bridge
            self.remote = remote
            self.reason = reason
            self.dropped = dropped
        }
    }
}
