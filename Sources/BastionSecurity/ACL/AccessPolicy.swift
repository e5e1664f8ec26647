/// The complete authorization policy: ACL rules (Mosquitto file + native rules), roles, the device
/// allowlist. An immutable value: loading is a pure function that returns a new policy or throws
/// an error naming `FILE:LINE` / `config acl[N]`; on reload the broker swaps the value atomically
/// and keeps the old one when loading fails.
///
/// Decisions (see `decide`) follow one documented precedence — docs/access-control.md:
/// among the rules that apply to the identity and cover the topic, the most specific topic filter
/// wins; on a tie the most specific identity (client id > user/certificate > role > pattern/all >
/// anonymous); then deny beats allow. Nothing matching: deny.
public struct AccessPolicy: Sendable {
    let storage: Storage

    /// Set by the caller (the broker counts reloads); informational. Caches detect a new policy by
    /// identity, so two policies with the same generation are still told apart.
    public let generation: UInt64

    /// Rules grouped by whom they are for, so a decision looks only at the rules of one identity.
    final class Storage: Sendable {
        let rules: [ACLRule]
        let byClientID: [String: [ACLRule]]
        let byUser: [String: [ACLRule]]
        let byCertificate: [String: [ACLRule]]
        let byRole: [String: [ACLRule]]
        let everyone: [ACLRule]
        let anonymous: [ACLRule]
        let roles: [String: [String]]
        let rolesOfUser: [String: [String]]
        let allowlist: ClientAllowlist
        let aclSource: String?

        init(rules: [ACLRule], roles: [String: [String]], allowlist: ClientAllowlist, aclSource: String?) {
            var byClientID: [String: [ACLRule]] = [:]
            var byUser: [String: [ACLRule]] = [:]
            var byCertificate: [String: [ACLRule]] = [:]
            var byRole: [String: [ACLRule]] = [:]
            var everyone: [ACLRule] = []
            var anonymous: [ACLRule] = []
            for rule in rules {
                switch rule.subject {
                case .clientID(let id): byClientID[id, default: []].append(rule)
                case .user(let name): byUser[name, default: []].append(rule)
                case .certificate(let name): byCertificate[name, default: []].append(rule)
                case .role(let name): byRole[name, default: []].append(rule)
                case .all: everyone.append(rule)
                case .anonymous: anonymous.append(rule)
                }
            }
            var rolesOfUser: [String: [String]] = [:]
            for role in roles.keys.sorted() {
                for member in Set(roles[role] ?? []) { rolesOfUser[member, default: []].append(role) }
            }
            self.rules = rules
            self.byClientID = byClientID
            self.byUser = byUser
            self.byCertificate = byCertificate
            self.byRole = byRole
            self.everyone = everyone
            self.anonymous = anonymous
            self.roles = roles
            self.rolesOfUser = rolesOfUser
            self.allowlist = allowlist
            self.aclSource = aclSource
        }
    }

    init(storage: Storage, generation: UInt64) {
        self.storage = storage
        self.generation = generation
    }

    /// No rule, no role, no allowlist: everything is denied unless backend rules grant it.
    public static let empty = AccessPolicy(
        storage: Storage(rules: [], roles: [:], allowlist: ClientAllowlist(), aclSource: nil), generation: 0)

    /// Loads a policy.
    /// - Parameters:
    ///   - aclFile: a Mosquitto-format ACL file, or nil.
    ///   - nativeRules: the configuration file's `auth.acl` rules.
    ///   - roles: role name → member usernames (`auth.roles`).
    ///   - allowedClients: username or role (or `"*"` for everyone without an entry) → client id
    ///     patterns with `*` globs (`auth.allowed_clients`).
    ///   - requireClientIDEqualsUsername: `auth.require_client_id_equals_username`.
    ///   - generation: a number the caller uses to tell policies apart in logs.
    public static func load(
        aclFile: String?,
        nativeRules: [NativeACLRule] = [],
        roles: [String: [String]] = [:],
        allowedClients: [String: [String]] = [:],
        requireClientIDEqualsUsername: Bool = false,
        generation: UInt64 = 0
    ) throws(ACLError) -> AccessPolicy {
        var text: String?
        if let aclFile {
            do {
                text = try FileIO.readText(aclFile)
            } catch {
                throw ACLError(source: aclFile, message: "cannot read ACL file: \(error)")
            }
        }
        return try make(aclText: text, aclSource: aclFile ?? "acl", nativeRules: nativeRules, roles: roles,
                        allowedClients: allowedClients,
                        requireClientIDEqualsUsername: requireClientIDEqualsUsername, generation: generation)
    }

    /// Same as `load`, with the ACL file's text given (`aclSource` names it in errors and decisions).
    public static func make(
        aclText: String?,
        aclSource: String = "acl",
        nativeRules: [NativeACLRule] = [],
        roles: [String: [String]] = [:],
        allowedClients: [String: [String]] = [:],
        requireClientIDEqualsUsername: Bool = false,
        generation: UInt64 = 0
    ) throws(ACLError) -> AccessPolicy {
        var rules: [ACLRule] = []
        if let aclText {
            rules = try MosquittoACLFile.parse(aclText, source: aclSource, firstOrder: 0)
        }
        for (roleName, members) in roles.sorted(by: { $0.key < $1.key }) {
            guard !roleName.isEmpty else { throw ACLError(source: "config roles", message: "empty role name") }
            if members.contains(where: \.isEmpty) {
                throw ACLError(source: "config roles.\(roleName)", message: "empty member name")
            }
        }
        for native in nativeRules {
            if case .role(let roleName) = native.subject, roles[roleName] == nil {
                throw ACLError(source: native.source, message: "role '\(roleName)' is not defined under roles")
            }
            let levels: [FilterLevel]
            do {
                levels = try ACLRule.parseLevels(native.topic, substitutes: true)
            } catch {
                switch error {
                case .invalidFilter(let why):
                    throw ACLError(source: "\(native.source).topic", message: "invalid topic filter '\(native.topic)': \(why)")
                }
            }
            if case .role(let roleName)? = native.binding, roles[roleName] == nil {
                throw ACLError(source: native.source, message: "role '\(roleName)' is not defined under roles")
            }
            rules.append(ACLRule(
                subject: native.ruleSubject, binding: native.binding?.ruleSubject, effect: native.effect, filter: native.topic, levels: levels,
                origin: .native, source: native.source,
                description: "\(native.source) \(native.subjectText): \(native.access.rawValue) \(native.topic)",
                order: rules.count))
        }
        let allowlist = try ClientAllowlist(allowedClients, requireClientIDEqualsUsername: requireClientIDEqualsUsername)
        return AccessPolicy(
            storage: Storage(rules: rules, roles: roles, allowlist: allowlist, aclSource: aclText == nil ? nil : aclSource),
            generation: generation)
    }

    /// Number of ACL rules (file and native).
    public var ruleCount: Int { storage.rules.count }

    /// Every rule's description, in order (for `bastion acl` and diagnostics).
    public var ruleDescriptions: [String] { storage.rules.map(\.description) }

    /// Whether the client may connect with this client id (device allowlist and
    /// `require_client_id_equals_username`). See `ClientAllowlist`.
    public func mayConnect(_ identity: Identity) -> AccessDecision {
        storage.allowlist.decide(identity, rolesOfUser: roles(of: identity))
    }

    /// `identity` with `clientIDBound` set: the client id equals the certificate identity, or the
    /// allowlist binds it to the identity (see `ClientAllowlist.binds`).
    public func bound(_ identity: Identity) -> Identity {
        var identity = identity
        identity.clientIDBound = identity.certificateIdentity == identity.clientID || identity.clientIDBoundByBackend
            || storage.allowlist.binds(identity, rolesOfUser: roles(of: identity))
        return identity
    }

    /// The roles listing the identity's user name, then the roles a backend gave it that the
    /// policy defines.
    func roles(of identity: Identity) -> [String] {
        var roles = identity.username.flatMap { storage.rolesOfUser[$0] } ?? []
        for role in identity.backendRoles where storage.roles[role] != nil && !roles.contains(role) {
            roles.append(role)
        }
        return roles
    }

    /// Whether `role` is defined under `auth.roles` (backends may only map to defined roles).
    public func definesRole(_ role: String) -> Bool { storage.roles[role] != nil }
}
