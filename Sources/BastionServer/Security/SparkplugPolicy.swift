import BastionCore
import BastionSecurity
import Crypto
import Foundation
import Sparkplug
import X509

/// `auth.sparkplug` loaded: the role bindings, the ACL rules they stand for, the host keys of
/// signed commands and the groups that require them. Swapped with the rest of the security
/// material on reload.
struct SparkplugPolicy: Sendable {
    struct Binding: Sendable {
        var binding: SparkplugRoleBinding
        /// Host roles only: the keys its commands verify against.
        var publicKeys: [Curve25519.Signing.PublicKey]
    }

    var bindings: [Binding]
    var signedCommandGroups: Set<String>
    /// `auth.roles`, for `role:` subjects.
    var rolesOfUser: [String: Set<String>]

    /// Roles are enforced (births, deaths, data, STATE and commands only from their holders)
    /// when any is configured; without them Sparkplug traffic follows the ACL alone.
    var isEnforced: Bool { !bindings.isEmpty }

    static func load(_ config: SparkplugConfig?, roles: [String: [String]], configPath: String?) throws(ConfigError) -> SparkplugPolicy? {
        guard let config else { return nil }
        let source = configPath ?? "config"
        var bindings: [Binding] = []
        for (i, entry) in (config.roles ?? []).enumerated() {
            let key = "auth.sparkplug.roles[\(i)]"
            bindings.append(try binding(entry, key: key, source: "\(source) \(key)", configPath: configPath))
        }
        var signed: Set<String> = []
        for (i, group) in (config.signed_command_groups ?? []).enumerated() {
            guard SparkplugID.isValid(group) else {
                throw ConfigError(file: configPath, key: "auth.sparkplug.signed_command_groups[\(i)]",
                                  "'\(group)' is not a Sparkplug group id (empty, or contains '/', '+' or '#')")
            }
            signed.insert(group)
        }
        for group in signed.sorted() {
            let hasKey = bindings.contains { entry in
                guard case .host(_, let groups) = entry.binding.template else { return false }
                return !entry.publicKeys.isEmpty && (groups.contains(group) || groups.contains("%u") || groups.contains("%c"))
            }
            if !hasKey {
                throw ConfigError(file: configPath, key: "auth.sparkplug.signed_command_groups",
                                  "group '\(group)' requires signed commands but no host role for it has public_key_files",
                                  fix: "add public_key_files to the host role that commands \(group)")
            }
        }
        var rolesOfUser: [String: Set<String>] = [:]
        for (role, members) in roles {
            for member in members { rolesOfUser[member, default: []].insert(role) }
        }
        return SparkplugPolicy(bindings: bindings, signedCommandGroups: signed, rolesOfUser: rolesOfUser)
    }

    private static func binding(_ entry: SparkplugRoleConfig, key: String, source: String, configPath: String?) throws(ConfigError) -> Binding {
        var subjects: [SparkplugRoleBinding.Subject] = []
        if let user = entry.user { subjects.append(.user(user)) }
        if let role = entry.role { subjects.append(.aclRole(role)) }
        if let certificate = entry.certificate { subjects.append(.certificate(certificate)) }
        if entry.all == true { subjects.append(.all) }
        guard subjects.count == 1, let subject = subjects.first else {
            throw ConfigError(file: configPath, key: key, "set exactly one of user, role, certificate, all: true (found \(subjects.count))")
        }
        if case .user(let name) = subject, name.isEmpty { throw ConfigError(file: configPath, key: "\(key).user", "empty name") }
        if case .aclRole(let name) = subject, name.isEmpty { throw ConfigError(file: configPath, key: "\(key).role", "empty name") }
        if case .certificate(let name) = subject, name.isEmpty { throw ConfigError(file: configPath, key: "\(key).certificate", "empty name") }
        var templates: [(SparkplugRole, [String])] = []
        if let edge = entry.edge { templates.append((.edge(group: edge.group, edgeNode: edge.edge_node), [])) }
        if let host = entry.host {
            let groups: SparkplugGroupSelection = host.groups.map { .listed($0) } ?? .all
            templates.append((.host(hostID: host.host_id, groups: groups), host.public_key_files ?? []))
        }
        if let monitor = entry.monitor { templates.append((.monitor(hostID: monitor.host_id), [])) }
        guard templates.count == 1, let (template, keyFiles) = templates.first else {
            throw ConfigError(file: configPath, key: key, "set exactly one of edge, host, monitor (found \(templates.count))")
        }
        let binding: SparkplugRoleBinding
        do {
            binding = try SparkplugRoleBinding(subject: subject, template: template, source: source)
        } catch {
            throw ConfigError(file: configPath, key: key, "\(error)")
        }
        var keys: [Curve25519.Signing.PublicKey] = []
        for (i, path) in keyFiles.enumerated() {
            keys.append(try publicKey(path: path, key: "\(key).host.public_key_files[\(i)]", configPath: configPath))
        }
        return Binding(binding: binding, publicKeys: keys)
    }

    private static func publicKey(path: String, key: String, configPath: String?) throws(ConfigError) -> Curve25519.Signing.PublicKey {
        let pem: String
        do {
            pem = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: configPath, key: key, "cannot read \(path): \(error.localizedDescription)")
        }
        let parsed: Certificate.PublicKey
        do {
            parsed = try Certificate.PublicKey(pemEncoded: pem)
        } catch {
            throw ConfigError(file: configPath, key: key, "\(path) is not a PEM public key", fix: "export it with `openssl pkey -in KEY -pubout`")
        }
        guard let ed25519 = Curve25519.Signing.PublicKey(parsed) else {
            throw ConfigError(file: configPath, key: key, "\(path) is not an Ed25519 key", fix: "generate one with `openssl genpkey -algorithm ed25519`")
        }
        return ed25519
    }

    /// The topic rules the roles stand for, added to the ACL (default deny for the rest).
    func aclRules() -> [NativeACLRule] {
        var rules: [NativeACLRule] = []
        for entry in bindings {
            let subject: NativeACLRule.Subject = switch entry.binding.subject {
            case .user(let name): .user(name)
            case .aclRole(let name): .role(name)
            case .certificate(let name): .certificate(name)
            case .all: .all
            }
            // Validated when the binding was made.
            for grant in (try? entry.binding.template.grants()) ?? [] {
                let access: NativeACLRule.Access = switch grant.access {
                case .publish: .publish
                case .subscribe: .subscribe
                case .read: .read
                case .deny: .deny
                }
                rules.append(NativeACLRule(subject: subject, access: access, topic: grant.filter, source: entry.binding.source))
            }
        }
        return rules
    }

    /// The roles `identity` holds, with the keys of each host role.
    func roles(for identity: ClientIdentity) -> [(role: SparkplugRole, keys: [Curve25519.Signing.PublicKey])] {
        var aclRoles = identity.username.flatMap { rolesOfUser[$0] } ?? []
        aclRoles.formUnion(identity.backendRoles)
        var held: [(SparkplugRole, [Curve25519.Signing.PublicKey])] = []
        for entry in bindings {
            if let role = entry.binding.role(username: identity.username, clientID: identity.clientID,
                                             certificateIdentity: identity.certificateIdentity, aclRoles: aclRoles) {
                held.append((role, entry.publicKeys))
            }
        }
        return held
    }
}
