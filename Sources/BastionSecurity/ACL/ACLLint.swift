/// A likely mistake in a policy. Warnings never change a decision; `bastion acl lint --strict`
/// (and a broker configured to) treats them as errors.
public struct LintWarning: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A grant on `#` or on a filter whose first level is `+`.
        case broadGrant
        /// A rule that can never decide anything (duplicate, or an allow tied with a deny).
        case shadowed
        /// A known user (from the password file) to whom no rule applies: everything is denied.
        case userWithoutRule
        /// A publish grant on `$SYS`, the broker's own tree.
        case systemTopicWrite
        /// A Mosquitto `pattern` line without `%u` or `%c`.
        case patternWithoutSubstitution
        /// A rule on `$share/…`, which never matches: shared subscriptions are checked on their filter.
        case sharedSubscriptionRule
        /// A Mosquitto-file allow inside a wider deny for the same user: Bastion allows (more
        /// specific wins), Mosquitto denies (its deny lines are checked first).
        case differsFromMosquitto
        /// A role member or allowlist key that is neither a known user nor a role.
        case unknownName
        /// A client-id rule or `%c` pattern that no binding can make apply: client ids are chosen
        /// by clients, so such rules grant only to identities whose client id is bound to them.
        case unboundClientID
    }

    public var kind: Kind
    /// `FILE:LINE`, `config acl[N]`, `config roles.R`, …
    public var source: String
    public var message: String

    public init(kind: Kind, source: String, message: String) {
        self.kind = kind
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): warning: \(message)" }
}

extension AccessPolicy {
    /// Checks the policy for likely mistakes. `knownUsers` (e.g. the password file's usernames)
    /// enables the checks about users; pass `[]` to skip them.
    public func lint(knownUsers: [String] = []) -> [LintWarning] {
        let storage = self.storage
        var warnings: [LintWarning] = []

        for rule in storage.rules {
            let isAllow = !rule.effect.isDeny
            if isAllow, let first = rule.levels.first, first == .plus || (first == .hash && rule.levels.count == 1) {
                warnings.append(LintWarning(kind: .broadGrant, source: rule.source,
                    message: first == .plus
                        ? "grants '\(rule.filter)', which matches under every top-level topic; prefer a literal first level"
                        : "grants '#' (every topic); prefer a narrower filter"))
            }
            if case .allow(let set) = rule.effect, set.contains(.publish), case .literal(let first)? = rule.levels.first, first == "$SYS" {
                warnings.append(LintWarning(kind: .systemTopicWrite, source: rule.source,
                    message: "grants publish on '\(rule.filter)': clients could forge broker status topics"))
            }
            if rule.origin == .mosquittoPattern, !rule.usesSubstitution {
                warnings.append(LintWarning(kind: .patternWithoutSubstitution, source: rule.source,
                    message: "pattern '\(rule.filter)' has no %u or %c, so it applies to every client alike"))
            }
            if isAllow, rule.binding == nil, case .clientID(let id) = rule.subject, !storage.allowlist.couldBind(clientID: id) {
                warnings.append(LintWarning(kind: .unboundClientID, source: rule.source,
                    message: "grants to client id '\(id)', which no allowed_clients entry binds to an identity: the rule applies only to a client whose certificate identity is '\(id)'; bind it with allowed_clients or add user:/role: to the rule"))
            }
            if isAllow, rule.usesClientID, !storage.allowlist.couldBindAny {
                warnings.append(LintWarning(kind: .unboundClientID, source: rule.source,
                    message: "'\(rule.filter)' uses %c, which applies only to client ids bound to the identity (allowed_clients, require_client_id_equals_username, or a certificate identity equal to the client id)"))
            }
            if rule.filter.hasPrefix("$share/") {
                warnings.append(LintWarning(kind: .sharedSubscriptionRule, source: rule.source,
                    message: "'\(rule.filter)' never matches: a $share/GROUP/F subscription is checked on F"))
            }
        }

        warnings += shadowWarnings(storage.rules)
        warnings += mosquittoDifferenceWarnings(storage.rules)
        if !knownUsers.isEmpty { warnings += userWarnings(knownUsers: knownUsers) }
        return warnings
    }

    /// Rules that never decide: with the same subject and filter, a deny beats any allow (whatever
    /// the order), and a rule that repeats an earlier one adds nothing.
    private func shadowWarnings(_ rules: [ACLRule]) -> [LintWarning] {
        struct Key: Hashable {
            var subject: RuleSubject
            var levels: [FilterLevel]
        }
        var groups: [Key: [ACLRule]] = [:]
        var keys: [Key] = []
        for rule in rules {
            let key = Key(subject: rule.subject, levels: rule.levels)
            if groups[key] == nil { keys.append(key) }
            groups[key, default: []].append(rule)
        }
        var found: [(order: Int, warning: LintWarning)] = []
        for key in keys {
            guard let group = groups[key], group.count > 1 else { continue }
            let firstDeny = group.first { $0.effect.isDeny }
            var granted = AccessSet()
            for (position, rule) in group.enumerated() {
                switch rule.effect {
                case .deny:
                    if let firstDeny, firstDeny.order != rule.order {
                        found.append((rule.order, LintWarning(kind: .shadowed, source: rule.source,
                            message: "repeats the deny at \(firstDeny.source)")))
                    }
                case .allow(let set):
                    if let firstDeny {
                        found.append((rule.order, LintWarning(kind: .shadowed, source: rule.source,
                            message: "never applies: the deny of the same filter at \(firstDeny.source) wins the tie")))
                    } else if position > 0, granted.isSuperset(of: set) {
                        let earlier = group[..<position].map(\.source).joined(separator: ", ")
                        found.append((rule.order, LintWarning(kind: .shadowed, source: rule.source,
                            message: "adds nothing to \(earlier)")))
                    }
                    granted.formUnion(set)
                }
            }
        }
        return found.sorted { $0.order < $1.order }.map(\.warning)
    }

    /// Mosquitto checks a user's deny lines before its allow lines; Bastion lets the more specific
    /// filter win. Point out the Mosquitto-file allows this changes.
    private func mosquittoDifferenceWarnings(_ rules: [ACLRule]) -> [LintWarning] {
        var denies: [RuleSubject: [ACLRule]] = [:]
        for rule in rules where rule.effect.isDeny && rule.origin != .native {
            denies[rule.subject, default: []].append(rule)
        }
        var warnings: [LintWarning] = []
        for rule in rules where !rule.effect.isDeny && rule.origin != .native {
            for deny in denies[rule.subject] ?? [] where deny.levels != rule.levels
                && FilterCoverage.ruleCovers(deny.levels, rule.levels) {
                warnings.append(LintWarning(kind: .differsFromMosquitto, source: rule.source,
                    message: "allows '\(rule.filter)' inside the wider deny at \(deny.source): the more specific rule wins here, Mosquitto would deny"))
                break
            }
        }
        return warnings
    }

    private func userWarnings(knownUsers: [String]) -> [LintWarning] {
        let storage = self.storage
        let known = Set(knownUsers)
        var warnings: [LintWarning] = []
        let source = storage.aclSource ?? "config acl"
        // Rules for everyone that can apply to a named user: any `all` rule except those needing a
        // substitution the user lacks (none: a known user always has a username).
        let everyoneApplies = !storage.everyone.isEmpty
        for user in knownUsers {
            if everyoneApplies || storage.byUser[user] != nil { continue }
            if (storage.rolesOfUser[user] ?? []).contains(where: { storage.byRole[$0] != nil }) { continue }
            warnings.append(LintWarning(kind: .userWithoutRule, source: source,
                message: "user '\(user)' has no rule (no user, role or pattern rule applies): everything is denied"))
        }
        for (role, members) in storage.roles.sorted(by: { $0.key < $1.key }) {
            for member in members where !known.contains(member) {
                warnings.append(LintWarning(kind: .unknownName, source: "config roles.\(role)",
                    message: "member '\(member)' is not in the password file"))
            }
        }
        for key in storage.allowlist.entries.keys.sorted() where key != ClientAllowlist.defaultKey
            && !known.contains(key) && storage.roles[key] == nil {
            warnings.append(LintWarning(kind: .unknownName, source: "config allowed_clients.\(key)",
                message: "'\(key)' is neither a user in the password file nor a role"))
        }
        return warnings
    }
}
