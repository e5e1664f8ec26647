/// The device allowlist: which client ids a user (or the members of a role) may connect with.
///
/// `allowed_clients: {USER_OR_ROLE: [PATTERN, ...]}` where a pattern is a client id with `*`
/// matching any run of characters (`line1-gw-*`).
/// - A client whose username, certificate identity or roles have entries may connect only with a
///   client id matching one of the patterns of those entries (their union).
/// - A client with no entry of its own uses the `"*"` entry when there is one (anonymous clients
///   included); without a `"*"` entry it is unrestricted.
/// - `require_client_id_equals_username`: the client id must equal the username (or, for clients
///   authenticated only by certificate, the certificate identity). Anonymous clients are not
///   affected; whether they may connect at all is the broker's `allow_anonymous` decision.
struct ClientAllowlist: Sendable {
    struct Entry: Sendable {
        var key: String
        var patterns: [String]
    }

    static let defaultKey = "*"

    let entries: [String: Entry]
    let requireClientIDEqualsUsername: Bool

    /// No entry: every client id is allowed, none is bound.
    init() {
        entries = [:]
        requireClientIDEqualsUsername = false
    }

    init(_ allowedClients: [String: [String]], requireClientIDEqualsUsername: Bool) throws(ACLError) {
        var entries: [String: Entry] = [:]
        for (key, patterns) in allowedClients {
            let source = "config allowed_clients.\(key)"
            guard !key.isEmpty else { throw ACLError(source: "config allowed_clients", message: "empty user or role name") }
            guard !patterns.isEmpty else {
                throw ACLError(source: source, message: "empty list: it would allow no client id; remove the entry or add patterns")
            }
            if patterns.contains(where: \.isEmpty) {
                throw ACLError(source: source, message: "empty client id pattern")
            }
            entries[CanonicalName.nfc(key)] = Entry(key: key, patterns: patterns.map(CanonicalName.nfc))
        }
        self.entries = entries
        self.requireClientIDEqualsUsername = requireClientIDEqualsUsername
    }

    func decide(_ identity: Identity, rolesOfUser: [String]) -> AccessDecision {
        if requireClientIDEqualsUsername, let expected = identity.username ?? identity.certificateIdentity,
           identity.clientID != expected {
            return AccessDecision(allowed: false, rule: "config require_client_id_equals_username: client id differs")
        }
        var keys: [String] = []
        if let username = identity.username { keys.append(username) }
        if let certificate = identity.certificateIdentity, certificate != identity.username { keys.append(certificate) }
        keys.append(contentsOf: rolesOfUser)
        var applicable = keys.compactMap { entries[$0] }
        if applicable.isEmpty, let fallback = entries[Self.defaultKey] { applicable = [fallback] }
        guard !applicable.isEmpty else {
            return AccessDecision(allowed: true, rule: "no allowed_clients entry (unrestricted)")
        }
        for entry in applicable {
            for pattern in entry.patterns where Self.glob(pattern, matches: identity.clientID) {
                return AccessDecision(allowed: true, rule: "config allowed_clients.\(entry.key): \(pattern)")
            }
        }
        let names = applicable.map(\.key).joined(separator: ", ")
        return AccessDecision(allowed: false, rule: "config allowed_clients.\(names): client id matches no pattern")
    }

    /// Whether the client id is bound to the identity itself: the identity's own entry (user
    /// name, certificate identity or role — not the `"*"` fallback) names it, or the client id
    /// must equal the user name and does. The `"*"` entry and "unrestricted" bind nothing: they
    /// say which ids anyone may use, not whose id it is.
    func binds(_ identity: Identity, rolesOfUser: [String]) -> Bool {
        if requireClientIDEqualsUsername, let expected = identity.username ?? identity.certificateIdentity,
           identity.clientID == expected {
            return true
        }
        var keys: [String] = []
        if let username = identity.username { keys.append(username) }
        if let certificate = identity.certificateIdentity, certificate != identity.username { keys.append(certificate) }
        keys.append(contentsOf: rolesOfUser)
        for entry in keys.compactMap({ entries[$0] }) {
            if entry.patterns.contains(where: { Self.glob($0, matches: identity.clientID) }) { return true }
        }
        return false
    }

    /// Whether some identity's own entry could bind `clientID` (for lint).
    func couldBind(clientID: String) -> Bool {
        if requireClientIDEqualsUsername { return true }
        return entries.values.contains { entry in
            entry.key != Self.defaultKey && entry.patterns.contains { Self.glob($0, matches: clientID) }
        }
    }

    /// Whether any client id can be bound other than by certificate (for lint).
    var couldBindAny: Bool {
        requireClientIDEqualsUsername || entries.keys.contains { $0 != Self.defaultKey }
    }

    /// `*` matches any run of bytes (including none); every other byte matches itself.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        var pi = 0
        var ti = 0
        var starAt = -1
        var resumeAt = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                starAt = pi
                resumeAt = ti
                pi += 1
            } else if pi < p.count, p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if starAt >= 0 {
                // Let the last `*` absorb one more byte and retry.
                pi = starAt + 1
                resumeAt += 1
                ti = resumeAt
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
