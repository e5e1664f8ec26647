/// The configuration file as written by operators (YAML). Every field is optional here; defaults are
/// applied when the file is resolved into `BrokerSettings`. Keys are snake_case.
public struct ConfigFile: Codable, Sendable, Equatable {
    public var listeners: [ListenerConfig]?
    public var auth: AuthConfig?
    public var limits: LimitsConfig?
    public var persistence: PersistenceConfig?
    public var audit: AuditConfig?
    public var admin: AdminConfig?
    public var bans: [BanConfig]?
    public var alerts: AlertsConfig?
    /// Outbound links to other brokers (docs/bridge.md).
    public var bridges: [BridgeConfig]?
    public var log_level: String?

    public init() {}
}

public struct ListenerConfig: Codable, Sendable, Equatable {
    /// mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH
    public var url: String
    /// Only honoured on loopback listeners.
    public var allow_anonymous: Bool?
    /// Required to bind a plaintext (mqtt://, ws://) listener to a non-loopback address.
    public var insecure_plaintext: Bool?
    public var tls: TLSConfig?
    public var limits: LimitsConfig?
    /// Accept the PROXY protocol (v1 and v2) from these sources; the real client address it names
    /// then feeds limits, bans, logs and the audit trail.
    public var proxy_protocol: ProxyProtocolConfig?
    /// Browser origins (`https://host[:port]`, or `*`) that may open an MQTT WebSocket here.
    /// Default: none on a listener that allows anonymous access, any (logged) elsewhere.
    public var allowed_origins: [String]?

    public init(url: String) { self.url = url }
}

public struct ProxyProtocolConfig: Codable, Sendable, Equatable {
    /// Addresses or CIDR blocks of the load balancers / TLS terminators that send the header.
    public var trusted_sources: [String]

    public init(trusted_sources: [String]) { self.trusted_sources = trusted_sources }
}

public struct TLSConfig: Codable, Sendable, Equatable {
    /// PEM certificate chain, leaf first.
    public var cert: String?
    /// PEM private key; must not be readable by group or others.
    public var key: String?
    /// PEM bundle of CAs trusted for client certificates.
    public var ca: String?
    /// CRL files (PEM or DER).
    public var crl: [String]?
    public var require_certificate: Bool?
    /// cn | san_dns | san_uri | san_email — which certificate field becomes the identity.
    public var identity_from: String?
    /// Refuse a client whose client id differs from its certificate identity.
    public var require_client_id_match: Bool?
    /// Two-factor: a valid certificate AND a matching username/password.
    public var require_password: Bool?
    /// "1.2" (default) or "1.3".
    public var min_version: String?
    /// Seconds; default 10.
    public var handshake_timeout: Double?

    public init() {}
}

public struct AuthConfig: Codable, Sendable, Equatable {
    /// Mosquitto-format password file.
    public var password_file: String?
    /// Mosquitto-format ACL file.
    public var acl_file: String?
    public var allow_anonymous: Bool?
    /// Native ACL rules (adds roles and client-id rules to what Mosquitto's file can say).
    public var acl: [ACLRuleConfig]?
    /// role name -> member user names
    public var roles: [String: [String]]?
    /// Device allowlist: user or role -> client id patterns (`*` glob) allowed to connect.
    public var allowed_clients: [String: [String]]?
    public var require_client_id_equals_username: Bool?
    /// Disconnect a client whose PUBLISH is denied (default: answer 0x87 / drop QoS 0).
    public var disconnect_on_denied_publish: Bool?
    /// Groups of identities (user names) that may take over each other's sessions, e.g. a
    /// fail-over pair sharing one client id. Otherwise a session belongs to the identity that made it.
    public var shared_sessions: [[String]]?
    /// Identity backends, asked in order (docs/auth-backends.md); the password file is `{type: file}`
    /// (first when not listed).
    public var backends: [BackendConfig]?
    /// Seconds a decision of the identity backends is remembered (0: not at all). Default 30.
    public var cache_ttl: Double?
    /// Most decisions remembered. Default 10000.
    public var cache_size: Int?
    /// Sparkplug B roles (edge, host, monitor) expanded into topic rules, and signed commands
    /// (docs/sparkplug.md).
    public var sparkplug: SparkplugConfig?

    public init() {}
}

/// `auth.sparkplug`.
public struct SparkplugConfig: Codable, Sendable, Equatable {
    public var roles: [SparkplugRoleConfig]?
    /// Groups whose NCMD/DCMD must carry an Ed25519 signature by the commanding host's key.
    public var signed_command_groups: [String]?

    public init() {}
}

/// One entry of `auth.sparkplug.roles`: who (exactly one of `user`, `role`, `certificate`,
/// `all: true`) holds which role (exactly one of `edge`, `host`, `monitor`). Ids may contain
/// `%u` (user name) and `%c` (client id).
public struct SparkplugRoleConfig: Codable, Sendable, Equatable {
    public var user: String?
    /// A role of `auth.roles` (or one a backend maps, e.g. an LDAP group).
    public var role: String?
    public var certificate: String?
    public var all: Bool?
    public var edge: SparkplugEdgeRoleConfig?
    public var host: SparkplugHostRoleConfig?
    public var monitor: SparkplugMonitorRoleConfig?

    public init() {}
}

public struct SparkplugEdgeRoleConfig: Codable, Sendable, Equatable {
    public var group: String
    public var edge_node: String

    public init(group: String, edge_node: String) {
        self.group = group
        self.edge_node = edge_node
    }
}

public struct SparkplugHostRoleConfig: Codable, Sendable, Equatable {
    public var host_id: String
    /// The groups it may read and command; omitted: every group.
    public var groups: [String]?
    /// PEM Ed25519 public keys (`openssl pkey -pubout`) its signed commands verify against.
    public var public_key_files: [String]?

    public init(host_id: String) { self.host_id = host_id }
}

public struct SparkplugMonitorRoleConfig: Codable, Sendable, Equatable {
    /// The host id whose STATE it may publish, if it publishes one.
    public var host_id: String?

    public init() {}
}

/// One entry of `auth.backends`. Which keys a type takes is checked when the chain is built
/// (`BackendSpec`), so a key of another type is refused by name.
public struct BackendConfig: Codable, Sendable, Equatable {
    /// file | jwt | jwks | postgres | ldap | http
    public var type: String
    // Every type.
    /// Seconds a call may take, waiting for a slot included. Default 5 (http: 2).
    public var timeout: Double?
    /// Calls in progress at once. Default 16.
    public var max_concurrent: Int?
    /// Calls waiting for a slot; more are answered "server busy". Default 256.
    public var max_queued: Int?
    // jwt, jwks.
    public var secret_file: String?
    public var jwks_file: String?
    public var algorithms: [String]?
    public var issuer: String?
    public var audience: StringList?
    public var username_claim: String?
    public var clientid_claim: String?
    public var acl_claims: ACLClaimsConfig?
    public var disconnect_on_expiry: Bool?
    /// Seconds of clock skew tolerated on exp and nbf. Default 0.
    public var leeway: Double?
    // postgres, ldap, http.
    public var url: String?
    public var ca_file: String?
    // postgres.
    public var password_file: String?
    public var password_query: String?
    public var acl_query: String?
    public var tls: Bool?
    public var max_connections: Int?
    // ldap.
    public var bind_dn: String?
    public var search_base: String?
    public var search_filter: String?
    public var service_bind_dn: String?
    public var service_password_file: String?
    public var group_base: String?
    public var group_filter: String?
    public var group_attribute: String?
    public var member_attribute: String?
    public var start_tls: Bool?
    public var cert_file: String?
    public var key_file: String?
    /// Directory group -> role (or roles) of `auth.roles`.
    public var role_map: [String: StringList]?
    // http.
    public var certificates: Bool?
    public var insecure_plaintext: Bool?

    public init(type: String) { self.type = type }
}

/// `acl_claims`: which token claims hold the topic filters of each access.
public struct ACLClaimsConfig: Codable, Sendable, Equatable {
    public var publish: String?
    public var subscribe: String?
    public var readwrite: String?
    public var deny: String?

    public init() {}
}

/// A string or a list of strings (`audience: bastion` or `audience: [a, b]`).
public struct StringList: Codable, Sendable, Equatable {
    public var values: [String]

    public init(_ values: [String]) { self.values = values }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let single = try? container.decode(String.self) {
            values = [single]
        } else {
            values = try container.decode([String].self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }
}

public struct ACLRuleConfig: Codable, Sendable, Equatable {
    /// Exactly one of user / role / client_id / certificate / anonymous / all selects who the rule is for.
    public var user: String?
    public var role: String?
    public var client_id: String?
    public var certificate: String?
    public var anonymous: Bool?
    public var all: Bool?
    /// publish | subscribe | read | readwrite | deny  (readwrite = publish+subscribe+read)
    public var access: String
    /// Topic filter; may contain %u and %c.
    public var topic: String

    public init(access: String, topic: String) {
        self.access = access
        self.topic = topic
    }
}

public struct LimitsConfig: Codable, Sendable, Equatable {
    public var max_packet_size: Int?
    public var max_keep_alive: Int?
    public var max_inflight: Int?
    public var max_queued_messages: Int?
    public var max_queued_bytes: Int?
    /// drop_oldest | drop_newest
    public var queue_drop_policy: String?
    public var max_topic_alias: Int?
    public var max_session_expiry: Int?
    public var max_subscriptions_per_client: Int?
    public var max_filter_length: Int?
    public var max_subscription_bytes_per_client: Int?
    public var max_topic_length: Int?
    public var max_topic_levels: Int?
    /// Largest first packet (CONNECT) before authentication, bytes; default 16384.
    public var max_connect_packet_size: Int?
    /// A CONNECT whose bytes arrive slower than this (after a 2 s grace) is dropped; default 1024.
    public var connect_min_bytes_per_second: Int?
    /// Longest user name accepted, bytes; longer ones are refused before any lookup. Default 256.
    public var max_username_length: Int?
    /// Seconds a connection may stay unwritable (the client does not read) before it is closed.
    public var write_stall_timeout: Double?
    public var max_retained_messages: Int?
    public var max_retained_bytes: Int?
    public var max_retained_messages_per_identity: Int?
    public var max_retained_bytes_per_identity: Int?
    public var max_connections: Int?
    public var max_connections_per_ip: Int?
    /// New connections per second per source address (token bucket rate).
    public var connect_rate_per_ip: Double?
    /// New connections one source address may open at once before the rate applies.
    public var connect_burst_per_ip: Int?
    public var connect_timeout: Double?
    public var publish_rate_messages: Double?
    public var publish_rate_bytes: Double?
    /// Seconds of publish rate a client may send at once (bucket size = rate x burst).
    public var publish_burst_seconds: Double?
    /// backpressure | disconnect
    public var publish_rate_action: String?
    // Brute force and flapping (global `limits` only; ignored on listeners).
    /// Sources whose addresses are never banned automatically and that are exempt from the
    /// per-address limits (they front other clients). Default: 127.0.0.1/32 and ::1/128.
    public var trusted_networks: [String]?
    /// Protocol violations before CONNECT (and connections that never send CONNECT) from one
    /// address within auth_failure_window that ban it (0: off).
    public var protocol_violations_per_ip: Int?
    /// Failed authentications from one address within auth_failure_window that ban it (0: off).
    public var auth_failures_per_ip: Int?
    /// Failed authentications for one user name within auth_failure_window that ban it (0: off).
    public var auth_failures_per_user: Int?
    /// Seconds.
    public var auth_failure_window: Double?
    /// Short sessions of one client id, each ended without DISCONNECT, within flap_window that
    /// back the client id off (0: off).
    public var flap_connections: Int?
    /// Seconds.
    public var flap_window: Double?
    /// A connection shorter than this many seconds counts towards flapping.
    public var flap_min_duration: Double?
    /// First automatic ban, seconds (doubles per repeat offence).
    public var ban_initial: Double?
    /// Longest automatic ban, seconds.
    public var ban_max: Double?

    public init() {}
}

public struct PersistenceConfig: Codable, Sendable, Equatable {
    public var data_dir: String?
    /// strict | relaxed
    public var durability: String?
    /// Milliseconds between fsyncs in relaxed mode.
    public var fsync_interval_ms: Int?

    public init() {}
}

public struct AuditConfig: Codable, Sendable, Equatable {
    public var path: String?
    public var stdout: Bool?
    /// Rotate the file at this size (0: never). Default 100.
    public var max_size_mb: Int?
    /// Rotated files kept (FILE.1 … FILE.N). Default 5.
    public var max_files: Int?
    /// Records waiting to be written at most; more are dropped and counted. Default 65536.
    public var queue_size: Int?

    public init() {}
}

public struct AdminConfig: Codable, Sendable, Equatable {
    /// https://HOST:PORT (default https://127.0.0.1:9443); http:// only on loopback.
    public var listen: String?
    /// Accepted for older files; an admin listener off loopback now needs https and a certificate.
    public var allow_remote: Bool?
    /// File holding the bootstrap bearer token (role admin); default DATA/admin-token, generated.
    public var token_file: String?
    /// Certificate and key for https; default: the development CA's (loopback only).
    public var tls: AdminTLSConfig?
    /// Console users; default DATA/admin-users.
    public var users_file: String?
    /// Host names the console answers to besides its address (and localhost on loopback).
    public var hostnames: [String]?
    /// Browser sessions end after this many minutes (default 480) …
    public var session_minutes: Double?
    /// … or after this many minutes without a request (default 30).
    public var idle_minutes: Double?
    public var ldap: AdminLDAPConfig?

    public init() {}
}

public struct AdminTLSConfig: Codable, Sendable, Equatable {
    public var cert: String?
    public var key: String?

    public init() {}
}

/// `admin.ldap`: console logins against a directory.
public struct AdminLDAPConfig: Codable, Sendable, Equatable {
    /// ldaps://HOST[:636] or ldap://HOST[:389] (with start_tls off loopback).
    public var url: String
    public var start_tls: Bool?
    /// CA bundle for the directory's certificate (default: the system's roots).
    public var ca_file: String?
    /// Bind as this DN, %u being the user name: uid=%u,ou=people,dc=example,dc=org …
    public var bind_dn: String?
    /// … or search for the user under search_base with search_filter (default (uid=%u)) and bind as the entry found.
    public var search_base: String?
    public var search_filter: String?
    /// Service account for searches (optional); its password in a private file.
    public var service_dn: String?
    public var service_password_file: String?
    /// Groups: search group_base with group_filter (default (member=%d)) and read group_attribute (default cn) …
    public var group_base: String?
    public var group_filter: String?
    public var group_attribute: String?
    /// … or read this attribute of the user's entry (e.g. memberOf).
    public var member_attribute: String?
    /// Directory group → console role (viewer, operator, admin).
    public var role_map: [String: String]
    public var timeout_seconds: Double?

    public init(url: String, role_map: [String: String]) {
        self.url = url
        self.role_map = role_map
    }
}

public struct BanConfig: Codable, Sendable, Equatable {
    /// An IP address or CIDR, a user name or a client id.
    public var address: String?
    public var user: String?
    public var client_id: String?
    public var reason: String?

    public init() {}
}

/// Alert thresholds: events per window that raise an alert (audit log + `$SYS/bastion/alerts`).
public struct AlertsConfig: Codable, Sendable, Equatable {
    /// New connections per window.
    public var connection_rate: Int?
    /// Failed authentications per window.
    public var auth_failures: Int?
    /// ACL denials per window.
    public var acl_denials: Int?
    /// Seconds; default 60.
    public var window: Double?

    public init() {}
}
