import BastionBridge
import BastionCore
import BastionSecurity
import Logging

/// Command-line flags of `bastion serve`; they override the configuration file.
public struct ServeOptions: Sendable {
    public var configPath: String?
    public var listen: [String] = []
    public var dataDir: String?
    public var allowAnonymous = false
    public var passwordFile: String?
    public var aclFile: String?
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsCA: String?
    public var tlsCRL: String?
    public var requireCertificate = false
    public var auditLog: String?
    public var adminListen: String?
    public var logLevel: String?

    public init() {}
}

/// One listener, resolved and checked.
public struct ListenerSettings: Sendable {
    public var url: ListenerURL
    public var allowAnonymous: Bool
    public var tls: TLSConfig?
    public var limits: LimitsConfig?
    public var proxyProtocol: ProxyProtocolSettings? = nil
    public var webSocketOrigins: WebSocketOrigins = .any
}

/// `listeners[].proxy_protocol`, checked.
public struct ProxyProtocolSettings: Sendable {
    public var trustedSources: [IPRange]

    public func trusts(_ address: IPAddress) -> Bool { trustedSources.contains { $0.contains(address) } }
}

/// Everything the broker runs with, after defaults, file and flags are merged and checked.
public struct BrokerSettings: Sendable {
    public var listeners: [ListenerSettings]
    public var limits: BrokerLimits
    public var dataDir: String
    public var logLevel: Logger.Level
    public var connectTimeout: Double
    public var auth: AuthConfig
    public var audit: AuditConfig
    public var admin: AdminConfig?
    public var persistence: PersistenceConfig
    public var bans: [BanConfig]
    public var configPath: String?
    /// Connection limits, bans, audit and admin settings.
    public var protection: ProtectionSettings
    public var bridges: [BridgeSettings] = []

    public static let defaultListener = "mqtt://127.0.0.1:1883"
    /// The embedded default also serves TLS on loopback, with a generated development CA.
    public static let defaultTLSListener = "mqtts://127.0.0.1:8883"

    public static func resolve(options: ServeOptions) throws(ConfigError) -> BrokerSettings {
        let file = try options.configPath.map { path throws(ConfigError) in try ConfigLoader.load(path: path) } ?? ConfigFile()
        return try resolve(file: file, options: options)
    }

    public static func resolve(file: ConfigFile, options: ServeOptions) throws(ConfigError) -> BrokerSettings {
        let source = options.configPath
        var auth = file.auth ?? AuthConfig()
        if let p = options.passwordFile { auth.password_file = p }
        if let p = options.aclFile { auth.acl_file = p }

        // Listeners: flags replace the file's list.
        var configs: [ListenerConfig]
        if !options.listen.isEmpty {
            configs = options.listen.map { ListenerConfig(url: $0) }
        } else if let listeners = file.listeners, !listeners.isEmpty {
            configs = listeners
        } else {
            configs = [ListenerConfig(url: defaultListener), ListenerConfig(url: defaultTLSListener)]
        }
        var listeners: [ListenerSettings] = []
        for (i, config) in configs.enumerated() {
            let key = options.listen.isEmpty ? "listeners[\(i)].url" : "--listen"
            let url: ListenerURL
            do {
                url = try ListenerURL(parsing: config.url)
            } catch {
                throw ConfigError(file: options.listen.isEmpty ? source : nil, key: key, error.description)
            }
            let anonymous = options.allowAnonymous || (config.allow_anonymous ?? auth.allow_anonymous ?? false)
            if anonymous && !url.isLoopback {
                throw ConfigError(
                    file: options.allowAnonymous ? nil : source, key: options.allowAnonymous ? "--allow-anonymous" : key,
                    "anonymous access is refused on \(url), which is not a loopback address",
                    fix: "bind the listener to 127.0.0.1 or ::1, or configure a password file and drop allow_anonymous")
            }
            if !url.scheme.isTLS && !url.isLoopback && !(config.insecure_plaintext ?? false) {
                throw ConfigError(
                    file: source, key: key, "plaintext listener \(url) binds a non-loopback address",
                    fix: "use mqtts:// or wss://, or set insecure_plaintext: true on this listener if you really mean it")
            }
            var tls = config.tls
            if url.scheme.isTLS || tls != nil {
                var t = tls ?? TLSConfig()
                if let v = options.tlsCert { t.cert = v }
                if let v = options.tlsKey { t.key = v }
                if let v = options.tlsCA { t.ca = v }
                if let v = options.tlsCRL { t.crl = [v] }
                if options.requireCertificate { t.require_certificate = true }
                tls = t
            }
            var proxy: ProxyProtocolSettings?
            if let p = config.proxy_protocol {
                let key = "listeners[\(i)].proxy_protocol.trusted_sources"
                guard !p.trusted_sources.isEmpty else {
                    throw ConfigError(file: source, key: key, "is empty: no source could send the PROXY header",
                                      fix: "list the addresses of your load balancers or TLS terminators")
                }
                proxy = ProxyProtocolSettings(trustedSources: try p.trusted_sources.enumerated().map { j, text throws(ConfigError) in
                    guard let range = IPRange(text) else {
                        throw ConfigError(file: source, key: "\(key)[\(j)]", "'\(text)' is not an IP address or CIDR block",
                                          fix: "write an address like 10.0.0.5 or a block like 10.0.0.0/24")
                    }
                    return range
                })
            }
            if let size = config.limits?.max_connect_packet_size, size > (file.limits?.max_connect_packet_size ?? BrokerLimits().maximumConnectPacketSize),
               !(tls?.require_certificate ?? false) {
                throw ConfigError(
                    file: source, key: "listeners[\(i)].limits.max_connect_packet_size",
                    "a larger first packet is allowed only where clients are authenticated before CONNECT",
                    fix: "set tls.require_certificate: true on this listener, or keep the global limit")
            }
            var origins = WebSocketOrigins.any
            if let list = config.allowed_origins {
                for (j, origin) in list.enumerated() where origin != "*" && !WebSocketOrigins.isValid(origin) {
                    throw ConfigError(file: source, key: "listeners[\(i)].allowed_origins[\(j)]", "'\(origin)' is not a browser origin",
                                      fix: "write scheme, host and port only, like https://scada.example:8443, or * for any")
                }
                origins = list.contains("*") ? .any : .only(Set(list.map { $0.lowercased() }))
            } else if anonymous {
                // Any web page its visitor opens could otherwise use an anonymous listener.
                origins = .only([])
            }
            listeners.append(ListenerSettings(url: url, allowAnonymous: anonymous, tls: tls, limits: config.limits, proxyProtocol: proxy,
                                              webSocketOrigins: origins))
        }

        let limitsConfig = file.limits ?? LimitsConfig()
        let limits = try brokerLimits(limitsConfig, file: source)

        var logLevel = Logger.Level.info
        if let text = options.logLevel ?? file.log_level {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigError(file: options.logLevel == nil ? source : nil, key: options.logLevel == nil ? "log_level" : "--log-level",
                                  "unknown log level '\(text)'", fix: "use trace, debug, info, notice, warning, error or critical")
            }
            logLevel = level
        }
        var persistence = file.persistence ?? PersistenceConfig()
        if let dir = options.dataDir { persistence.data_dir = dir }
        var audit = file.audit ?? AuditConfig()
        if let path = options.auditLog { audit.path = path }
        var admin = file.admin
        if let listen = options.adminListen { admin = AdminConfig(); admin?.listen = listen }

        let protection = try ProtectionSettings.resolve(file: file, options: options)
        return BrokerSettings(
            listeners: listeners, limits: limits, dataDir: persistence.data_dir ?? "data", logLevel: logLevel,
            connectTimeout: limitsConfig.connect_timeout ?? 10, auth: auth, audit: audit, admin: admin,
            persistence: persistence, bans: file.bans ?? [], configPath: source, protection: protection,
            bridges: try BridgeConfig.resolve(file.bridges ?? [], file: source))
    }

    static func brokerLimits(_ c: LimitsConfig, file: String?) throws(ConfigError) -> BrokerLimits {
        var limits = BrokerLimits()
        func check(_ value: Int?, _ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            guard let value else { return nil }
            guard range.contains(value) else {
                throw ConfigError(file: file, key: "limits.\(key)", "\(value) is out of range", fix: "use a value from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let v = try check(c.max_packet_size, "max_packet_size", 64...268_435_460) { limits.maximumPacketSize = v }
        if let v = try check(c.max_inflight, "max_inflight", 1...65535) { limits.maximumInflight = v }
        if let v = try check(c.max_queued_messages, "max_queued_messages", 0...10_000_000) { limits.maximumQueuedMessages = v }
        if let v = try check(c.max_queued_bytes, "max_queued_bytes", 0...Int.max) { limits.maximumQueuedBytes = v }
        if let v = try check(c.max_topic_alias, "max_topic_alias", 0...65535) { limits.maximumTopicAlias = v }
        if let v = try check(c.max_keep_alive, "max_keep_alive", 1...65535) { limits.maximumKeepAlive = v }
        if let v = try check(c.max_session_expiry, "max_session_expiry", 0...Int(UInt32.max)) { limits.maximumSessionExpiry = UInt32(v) }
        if let v = try check(c.max_subscriptions_per_client, "max_subscriptions_per_client", 1...10_000_000) { limits.maximumSubscriptionsPerClient = v }
        if let v = try check(c.max_filter_length, "max_filter_length", 1...65535) { limits.maximumFilterLength = v }
        if let v = try check(c.max_subscription_bytes_per_client, "max_subscription_bytes_per_client", 1...Int(Int32.max)) {
            limits.maximumSubscriptionBytesPerClient = v
        }
        if let v = try check(c.max_topic_length, "max_topic_length", 1...65535) { limits.maximumTopicLength = v }
        if let v = try check(c.max_topic_levels, "max_topic_levels", 1...65535) { limits.maximumTopicLevels = v }
        if let v = try check(c.max_retained_messages, "max_retained_messages", 0...Int.max) { limits.maximumRetainedMessages = v }
        if let v = try check(c.max_retained_bytes, "max_retained_bytes", 0...Int.max) { limits.maximumRetainedBytes = v }
        if let v = try check(c.max_retained_messages_per_identity, "max_retained_messages_per_identity", 0...Int.max) {
            limits.maximumRetainedMessagesPerIdentity = v
        }
        if let v = try check(c.max_retained_bytes_per_identity, "max_retained_bytes_per_identity", 0...Int.max) {
            limits.maximumRetainedBytesPerIdentity = v
        }
        if let v = try check(c.max_connect_packet_size, "max_connect_packet_size", 64...268_435_460) { limits.maximumConnectPacketSize = v }
        if let v = try check(c.connect_min_bytes_per_second, "connect_min_bytes_per_second", 0...1_000_000_000) {
            limits.connectMinimumBytesPerSecond = v
        }
        if let v = try check(c.max_username_length, "max_username_length", 1...65535) { limits.maximumUsernameLength = v }
        if let t = c.write_stall_timeout {
            guard t.isFinite, t >= 1, t <= 86_400 else {
                throw ConfigError(file: file, key: "limits.write_stall_timeout", "\(t) is out of range", fix: "use seconds from 1 to 86400")
            }
            limits.writeStallTimeout = .milliseconds(Int64(t * 1000))
        }
        if let policy = c.queue_drop_policy {
            guard let p = BrokerLimits.QueueDropPolicy(rawValue: policy) else {
                throw ConfigError(file: file, key: "limits.queue_drop_policy", "unknown policy '\(policy)'", fix: "use drop_newest or drop_oldest")
            }
            limits.queueDropPolicy = p
        }
        if let t = c.connect_timeout, !(t > 0 && t <= 3600) {
            throw ConfigError(file: file, key: "limits.connect_timeout", "\(t) is out of range", fix: "use seconds between 0 and 3600")
        }
        return limits
    }
}
