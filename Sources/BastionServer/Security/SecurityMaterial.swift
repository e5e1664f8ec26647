import BastionSecurity
import BastionCore
import Foundation
import Logging

/// The password file and access policy the broker runs with, loaded together so a reload swaps
/// both or neither.
struct SecurityMaterial: Sendable {
    var passwordFile: PasswordFile?
    /// The access configuration: topic rules and the device allowlist; nil when neither is set.
    var policy: AccessPolicy?
    /// Whether any topic rule is configured (an allowlist alone leaves topics open, see
    /// `PolicyAuthorization`).
    var hasTopicRules: Bool
    var warnings: [LintWarning]
    /// Identities that may take over each other's sessions.
    var sessionSharing: SessionSharing = .none
    /// `auth.backends`, checked (the password file first when it is not listed).
    var backends: [BackendSpec] = []
    /// `auth.sparkplug`; its roles' topic rules are already part of `policy`.
    var sparkplug: SparkplugPolicy?

    /// The policy topic access is decided by; nil when no topic rule is configured.
    var topicPolicy: AccessPolicy? { hasTopicRules ? policy : nil }

    /// What the broker authorizes with: the ACL, and the Sparkplug roles when any are configured.
    func authorization(logger: Logger) -> any AuthorizationPolicy {
        let acl = PolicyAuthorization(policy: topicPolicy, logger: logger)
        guard let sparkplug, sparkplug.isEnforced else { return acl }
        return SparkplugAuthorization(base: acl, policy: sparkplug)
    }

    static func load(auth: AuthConfig, configPath: String?, generation: UInt64) throws(ConfigError) -> SecurityMaterial {
        var passwordFile: PasswordFile?
        if let path = auth.password_file {
            try SecretFiles.makePrivate(path, key: "auth.password_file")
            do {
                passwordFile = try PasswordFile.load(path: path)
            } catch {
                throw ConfigError(key: "auth.password_file", "\(error)", fix: "create or repair it with `bastion passwd`")
            }
        }
        let source = configPath ?? "config"
        let sparkplug = try SparkplugPolicy.load(auth.sparkplug, roles: auth.roles ?? [:], configPath: configPath)
        var native: [NativeACLRule]
        do {
            native = try (auth.acl ?? []).enumerated().map { i, r in
                try NativeACLRule(
                    user: r.user, role: r.role, clientID: r.client_id, certificate: r.certificate, anonymous: r.anonymous,
                    all: r.all, access: r.access, topic: r.topic, source: "\(source) acl[\(i)]")
            }
        } catch {
            throw ConfigError(file: configPath, key: "auth.acl", "\(error)")
        }
        native += sparkplug?.aclRules() ?? []
        let configured = auth.acl_file != nil || !native.isEmpty || auth.allowed_clients != nil
            || auth.require_client_id_equals_username == true
        var policy: AccessPolicy?
        if configured {
            do {
                policy = try AccessPolicy.load(
                    aclFile: auth.acl_file, nativeRules: native, roles: auth.roles ?? [:], allowedClients: auth.allowed_clients ?? [:],
                    requireClientIDEqualsUsername: auth.require_client_id_equals_username ?? false, generation: generation)
            } catch {
                throw ConfigError(key: auth.acl_file != nil ? "auth.acl_file" : "auth.acl", "\(error)")
            }
        }
        let hasTopicRules = auth.acl_file != nil || !native.isEmpty
        let warnings = hasTopicRules ? policy?.lint(knownUsers: passwordFile?.usernames ?? []) ?? [] : []
        let sharing: SessionSharing
        do {
            sharing = try SessionSharing(groups: auth.shared_sessions ?? [])
        } catch {
            throw ConfigError(file: configPath, key: "auth.shared_sessions", "\(error)")
        }
        if let ttl = auth.cache_ttl, !(0...3600).contains(ttl) {
            throw ConfigError(file: configPath, key: "auth.cache_ttl", "\(ttl) is out of range", fix: "use 0 (no cache) to 3600 seconds")
        }
        if let size = auth.cache_size, !(1...1_000_000).contains(size) {
            throw ConfigError(file: configPath, key: "auth.cache_size", "\(size) is out of range", fix: "use 1 to 1000000")
        }
        let backends = try BackendSpec.parse(auth: auth, configPath: configPath)
        return SecurityMaterial(passwordFile: passwordFile, policy: policy, hasTopicRules: hasTopicRules, warnings: warnings,
                                sessionSharing: sharing, backends: backends, sparkplug: sparkplug)
    }
}

/// The access policy as `bastion serve` would load it, for `bastion acl check|lint`.
public enum AccessConfiguration {
    /// Loads the ACL (and password file) from a configuration file and/or explicit files; the
    /// explicit files override the configuration's. The policy is nil when nothing is configured.
    public static func load(configPath: String?, aclFile: String?, passwordFile: String?) throws(ConfigError)
        -> (policy: AccessPolicy?, passwordFile: PasswordFile?, warnings: [LintWarning])
    {
        var auth = AuthConfig()
        if let configPath { auth = try ConfigLoader.load(path: configPath).auth ?? AuthConfig() }
        if let aclFile { auth.acl_file = aclFile }
        if let passwordFile { auth.password_file = passwordFile }
        let material = try SecurityMaterial.load(auth: auth, configPath: configPath, generation: 0)
        return (material.topicPolicy, material.passwordFile, material.warnings)
    }
}
