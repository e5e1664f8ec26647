import BastionCore
import BastionSecurity

/// The abuse-protection, audit, alerting and admin settings, resolved and checked from the
/// configuration file and the `serve` flags: what the connection gate, ban list, trackers, audit
/// log, alert monitor and admin server are built from.
public struct ProtectionSettings: Sendable {
    public var connectionLimits: ConnectionLimits
    /// Per listener (same order as `BrokerSettings.listeners`): limits that replace the global
    /// connection thresholds for that listener, nil when the listener has none.
    public var listenerConnectionLimits: [ConnectionLimits?]
    public var publishRate: PublishRatePolicy
    public var listenerPublishRates: [PublishRatePolicy?]
    public var banPolicy: BanPolicy
    public var authFailures: AuthFailurePolicy
    public var flapping: FlapPolicy
    public var configuredBans: [(subject: BanSubject, note: String?)]
    public var alerts: AlertPolicy
    public var audit: AuditSinkConfiguration
    public var admin: AdminSettings?

    /// The part abuse protection runs with.
    public var policy: ProtectionPolicy {
        var p = ProtectionPolicy()
        p.connectionLimits = connectionLimits
        p.listenerConnectionLimits = listenerConnectionLimits
        p.publishRate = publishRate
        p.listenerPublishRates = listenerPublishRates
        p.banPolicy = banPolicy
        p.authFailures = authFailures
        p.flapping = flapping
        p.configuredBans = configuredBans
        p.alerts = alerts
        return p
    }

    public static func resolve(file: ConfigFile, options: ServeOptions) throws(ConfigError) -> ProtectionSettings {
        let source = options.configPath
        let global = file.limits ?? LimitsConfig()
        let maximumPacketSize = global.max_packet_size ?? BrokerLimits().maximumPacketSize

        let connectionLimits = try connection(global, base: ConnectionLimits(), prefix: "limits", file: source)
        let publishRate = try publish(global, base: PublishRatePolicy(), packetSize: maximumPacketSize, prefix: "limits", file: source)
        var listenerConnection: [ConnectionLimits?] = []
        var listenerPublish: [PublishRatePolicy?] = []
        if options.listen.isEmpty, let listeners = file.listeners, !listeners.isEmpty {
            for (i, listener) in listeners.enumerated() {
                guard let limits = listener.limits else {
                    listenerConnection.append(nil)
                    listenerPublish.append(nil)
                    continue
                }
                let prefix = "listeners[\(i)].limits"
                let packetSize = limits.max_packet_size ?? maximumPacketSize
                listenerConnection.append(try connection(limits, base: connectionLimits, prefix: prefix, file: source))
                listenerPublish.append(try publish(limits, base: publishRate, packetSize: packetSize, prefix: prefix, file: source))
            }
        } else {
            let count = options.listen.isEmpty ? 1 : options.listen.count
            listenerConnection = Array(repeating: nil, count: count)
            listenerPublish = Array(repeating: nil, count: count)
        }

        var banPolicy = BanPolicy()
        if let v = try seconds(global.ban_initial, "limits.ban_initial", 1...86_400 * 365, file: source) { banPolicy.initial = v }
        if let v = try seconds(global.ban_max, "limits.ban_max", 1...86_400 * 365, file: source) { banPolicy.maximum = v }
        if let networks = global.trusted_networks {
            banPolicy.trustedNetworks = try networks.enumerated().map { i, text throws(ConfigError) in
                guard let range = IPRange(text) else {
                    throw ConfigError(file: source, key: "limits.trusted_networks[\(i)]", "'\(text)' is not an IP address or CIDR block",
                                      fix: "write an address like 127.0.0.1 or a block like 10.0.0.0/8; [] trusts nothing")
                }
                return range
            }
        }
        if banPolicy.maximum < banPolicy.initial {
            throw ConfigError(file: source, key: "limits.ban_max", "is shorter than limits.ban_initial", fix: "make ban_max at least ban_initial")
        }

        var auth = AuthFailurePolicy()
        if let v = try count(global.auth_failures_per_ip, "limits.auth_failures_per_ip", 0...1_000_000, file: source) { auth.perAddress = v }
        if let v = try count(global.auth_failures_per_user, "limits.auth_failures_per_user", 0...1_000_000, file: source) { auth.perUsername = v }
        if let v = try seconds(global.auth_failure_window, "limits.auth_failure_window", 1...86_400, file: source) { auth.window = v }
        if let v = try count(global.protocol_violations_per_ip, "limits.protocol_violations_per_ip", 0...1_000_000, file: source) {
            auth.protocolViolationsPerAddress = v
        }
        auth.userThrottle = banPolicy.initial

        var flap = FlapPolicy()
        if let v = try count(global.flap_connections, "limits.flap_connections", 0...1_000_000, file: source) { flap.connections = v }
        if let v = try seconds(global.flap_window, "limits.flap_window", 1...86_400, file: source) { flap.window = v }
        if let v = try seconds(global.flap_min_duration, "limits.flap_min_duration", 0.001...3600, file: source) { flap.shortSession = v }

        var bans: [(subject: BanSubject, note: String?)] = []
        for (i, ban) in (file.bans ?? []).enumerated() {
            let key = "bans[\(i)]"
            let given = [ban.address.map { ("address", $0) }, ban.user.map { ("user", $0) }, ban.client_id.map { ("client_id", $0) }]
                .compactMap { $0 }
            guard given.count == 1, let (kind, value) = given.first else {
                throw ConfigError(file: source, key: key, "a ban names exactly one of address, user or client_id",
                                  fix: "split it into one entry per subject")
            }
            guard let subject = BanSubject(kind: kind, value: value) else {
                throw ConfigError(file: source, key: "\(key).\(kind)", "'\(value)' is not a valid \(kind == "address" ? "IP address or CIDR block" : kind)",
                                  fix: kind == "address" ? "write an address like 192.0.2.7 or a block like 10.0.0.0/8" : "use a non-empty value")
            }
            bans.append((subject, ban.reason))
        }

        var alerts = AlertPolicy()
        if let a = file.alerts {
            alerts.connections = try count(a.connection_rate, "alerts.connection_rate", 0...100_000_000, file: source)
            alerts.authFailures = try count(a.auth_failures, "alerts.auth_failures", 0...100_000_000, file: source)
            alerts.aclDenials = try count(a.acl_denials, "alerts.acl_denials", 0...100_000_000, file: source)
            if let v = try seconds(a.window, "alerts.window", 1...86_400, file: source) { alerts.window = v }
        }

        let auditConfig = file.audit ?? AuditConfig()
        var audit = AuditSinkConfiguration(path: options.auditLog ?? auditConfig.path, stdout: auditConfig.stdout ?? false)
        if let mb = try count(auditConfig.max_size_mb, "audit.max_size_mb", 0...1_000_000, file: source) { audit.maximumFileBytes = mb * 1024 * 1024 }
        if let n = try count(auditConfig.max_files, "audit.max_files", 0...1000, file: source) { audit.maximumFiles = n }
        if let n = try count(auditConfig.queue_size, "audit.queue_size", 1...10_000_000, file: source) { audit.queueCapacity = n }

        let admin = try AdminSettings.resolve(config: file.admin, flag: options.adminListen, file: source)

        return ProtectionSettings(
            connectionLimits: connectionLimits, listenerConnectionLimits: listenerConnection, publishRate: publishRate,
            listenerPublishRates: listenerPublish, banPolicy: banPolicy, authFailures: auth, flapping: flap,
            configuredBans: bans, alerts: alerts, audit: audit, admin: admin)
    }

    // MARK: Sections

    static func connection(_ c: LimitsConfig, base: ConnectionLimits, prefix: String, file: String?) throws(ConfigError) -> ConnectionLimits {
        var limits = base
        if let v = try count(c.max_connections, "\(prefix).max_connections", 1...10_000_000, file: file) { limits.maximumConnections = v }
        if let v = try count(c.max_connections_per_ip, "\(prefix).max_connections_per_ip", 1...10_000_000, file: file) {
            limits.maximumConnectionsPerAddress = v
        }
        if let v = c.connect_rate_per_ip {
            guard v.isFinite, v > 0, v <= 1_000_000 else {
                throw ConfigError(file: file, key: "\(prefix).connect_rate_per_ip", "\(v) is out of range", fix: "use connections per second above 0 and up to 1000000")
            }
            limits.connectRatePerAddress = v
            // Keep the burst at least the rate unless set explicitly.
            limits.connectBurstPerAddress = max(limits.connectBurstPerAddress, v)
        }
        if let v = try count(c.connect_burst_per_ip, "\(prefix).connect_burst_per_ip", 1...10_000_000, file: file) {
            limits.connectBurstPerAddress = Double(v)
        }
        return limits
    }

    static func publish(_ c: LimitsConfig, base: PublishRatePolicy, packetSize: Int, prefix: String, file: String?) throws(ConfigError) -> PublishRatePolicy {
        var policy = base
        policy.minimumByteCapacity = Double(packetSize)
        func rate(_ value: Double?, _ key: String) throws(ConfigError) -> Double? {
            guard let value else { return nil }
            guard value.isFinite, value >= 0 else {
                throw ConfigError(file: file, key: "\(prefix).\(key)", "\(value) is out of range", fix: "use a rate per second, 0 for unlimited")
            }
            return value
        }
        if let v = try rate(c.publish_rate_messages, "publish_rate_messages") { policy.messagesPerSecond = v }
        if let v = try rate(c.publish_rate_bytes, "publish_rate_bytes") { policy.bytesPerSecond = v }
        if let v = c.publish_burst_seconds {
            guard v.isFinite, v > 0, v <= 3600 else {
                throw ConfigError(file: file, key: "\(prefix).publish_burst_seconds", "\(v) is out of range", fix: "use seconds above 0 and up to 3600")
            }
            policy.burstSeconds = v
        }
        if let action = c.publish_rate_action {
            guard let a = PublishRatePolicy.Action(rawValue: action) else {
                throw ConfigError(file: file, key: "\(prefix).publish_rate_action", "unknown action '\(action)'", fix: "use backpressure or disconnect")
            }
            policy.action = a
        }
        return policy
    }

    private static func count(_ value: Int?, _ key: String, _ range: ClosedRange<Int>, file: String?) throws(ConfigError) -> Int? {
        guard let value else { return nil }
        guard range.contains(value) else {
            throw ConfigError(file: file, key: key, "\(value) is out of range", fix: "use a value from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    private static func seconds(_ value: Double?, _ key: String, _ range: ClosedRange<Double>, file: String?) throws(ConfigError) -> Duration? {
        guard let value else { return nil }
        guard value.isFinite, range.contains(value) else {
            throw ConfigError(file: file, key: key, "\(value) is out of range", fix: "use seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return .clampedSeconds(value)
    }
}

extension AbuseProtection {
    public convenience init(settings: ProtectionSettings, audit: AuditLog, metrics: BrokerMetrics?, clock: any LimitClock = SystemLimitClock(),
                            onAlert: @escaping @Sendable (Alert, _ payload: String) -> Void = { _, _ in }) {
        self.init(settings: settings.policy, audit: audit, metrics: metrics, clock: clock, onAlert: onAlert)
    }

    public func reload(_ settings: ProtectionSettings, path: String?) {
        reload(settings.policy, path: path)
    }
}
