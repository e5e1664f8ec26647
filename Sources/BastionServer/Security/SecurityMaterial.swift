import BastionSecurity
import Foundation

/// The password file and access policy the broker runs with, loaded together so a reload swaps
/// both or neither.
struct SecurityMaterial: Sendable {
    var passwordFile: PasswordFile?
    /// nil when no ACL is configured at all (see `PolicyAuthorization`).
    var policy: AccessPolicy?
    var warnings: [LintWarning]

    static func load(auth: AuthConfig, configPath: String?, generation: UInt64) throws(ConfigError) -> SecurityMaterial {
        var passwordFile: PasswordFile?
        if let path = auth.password_file {
            do {
                passwordFile = try PasswordFile.load(path: path)
            } catch {
                throw ConfigError(key: "auth.password_file", "\(error)", fix: "create or repair it with `bastion passwd`")
            }
        }
        let source = configPath ?? "config"
        let native: [NativeACLRule]
        do {
            native = try (auth.acl ?? []).enumerated().map { i, r in
                try NativeACLRule(
                    user: r.user, role: r.role, clientID: r.client_id, certificate: r.certificate, anonymous: r.anonymous,
                    all: r.all, access: r.access, topic: r.topic, source: "\(source) acl[\(i)]")
            }
        } catch {
            throw ConfigError(file: configPath, key: "auth.acl", "\(error)")
        }
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
        let warnings = policy?.lint(knownUsers: passwordFile?.usernames ?? []) ?? []
        return SecurityMaterial(passwordFile: passwordFile, policy: policy, warnings: warnings)
    }
}
