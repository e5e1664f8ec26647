import MQTTCodec

extension AccessPolicy {
    /// May `identity` perform `operation` on `topicOrFilter`?
    ///
    /// - `.publish` and `.read` take a topic name; every rule whose filter matches it is a candidate.
    /// - `.subscribe` takes a filter (`$share/GROUP/F` is checked on F); a rule is a candidate when
    ///   its filter covers the whole requested filter. So `#` is refused when only
    ///   `plant/line1/+/temp` is granted, and a deny that covers only part of the requested filter
    ///   does not refuse the subscription: it is enforced per message by the `.read` check.
    ///
    /// Only rules that grant the operation, and deny rules, are candidates. The winner is the one
    /// with the most specific filter, then the most specific identity, then deny over allow.
    /// Cost: the rules of this identity's client id, user, certificate and roles, plus the rules
    /// for everyone — never the rules of other users.
    ///
    /// `backendRules` (the rules an identity backend returned for this client, see
    /// `BackendRules`) compete like the identity's own user rules.
    public func decide(_ identity: Identity, _ operation: AccessOperation, _ topicOrFilter: String,
                       backendRules: BackendRules = .none) -> AccessDecision {
        var target = topicOrFilter
        switch operation {
        case .subscribe:
            if let shared = SharedFilter(topicOrFilter) { target = shared.filter }
            do {
                try TopicRules.validateFilter(target, limits: nil)
            } catch {
                return AccessDecision(allowed: false, rule: "invalid topic filter")
            }
        case .publish, .read:
            guard !target.isEmpty, !TopicRules.hasWildcard(target) else {
                return AccessDecision(allowed: false, rule: "invalid topic name")
            }
        }
        let requested = target.split(separator: "/", omittingEmptySubsequences: false)
        let substitution = FilterCoverage.Substitution(identity)

        var best: ACLRule?
        /// The winning deny among the identity's own rules (user, certificate, roles): it vetoes a
        /// client-id allow, since a client id is something the client merely claims.
        var identityDeny: ACLRule?
        func consider(_ rules: [ACLRule], identityLevel: Bool = false) {
            for rule in rules where rule.effect.applies(to: operation) {
                // Grants by client id need a bound client id; denies restrict and always apply.
                if rule.usesClientID, !identity.clientIDBound, !rule.effect.isDeny { continue }
                guard FilterCoverage.covers(rule.levels, requested, substitution) else { continue }
                if identityLevel, rule.effect.isDeny, identityDeny.map({ Self.precedes(rule, $0) }) ?? true { identityDeny = rule }
                if let current = best, !Self.precedes(rule, current) { continue }
                best = rule
            }
        }

        let storage = self.storage
        let roles = self.roles(of: identity)
        if let rules = storage.byClientID[identity.clientID] {
            consider(rules.filter { rule in
                guard let binding = rule.binding else { return identity.clientIDBound || rule.effect.isDeny }
                switch binding {
                case .user(let name): return identity.username == name
                case .certificate(let name): return identity.certificateIdentity == name
                case .role(let name): return roles.contains(name)
                case .clientID, .all, .anonymous: return false
                }
            })
        }
        if let username = identity.username {
            if let rules = storage.byUser[username] { consider(rules, identityLevel: true) }
            for role in roles {
                if let rules = storage.byRole[role] { consider(rules, identityLevel: true) }
            }
        }
        if let certificate = identity.certificateIdentity, let rules = storage.byCertificate[certificate] {
            consider(rules, identityLevel: true)
        }
        if !backendRules.rules.isEmpty { consider(backendRules.rules, identityLevel: true) }
        consider(storage.everyone)
        if identity.isAnonymous { consider(storage.anonymous) }

        guard let best else { return .defaultDeny }
        if case .clientID = best.subject, !best.effect.isDeny, let identityDeny {
            return AccessDecision(allowed: false, rule: identityDeny.description)
        }
        return AccessDecision(allowed: !best.effect.isDeny, rule: best.description)
    }

    /// Whether `candidate` takes precedence over `current` (both cover the request).
    static func precedes(_ candidate: ACLRule, _ current: ACLRule) -> Bool {
        let filter = FilterCoverage.compareSpecificity(candidate.levels, current.levels)
        if filter != 0 { return filter > 0 }
        let identity = candidate.subject.rank - current.subject.rank
        if identity != 0 { return identity > 0 }
        if candidate.effect.isDeny != current.effect.isDeny { return candidate.effect.isDeny }
        // Complete tie: the earlier rule is reported.
        return candidate.order < current.order
    }
}
