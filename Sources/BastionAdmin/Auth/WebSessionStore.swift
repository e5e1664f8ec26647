import Synchronization

/// Browser sessions, in memory (a restart logs everyone out). The id is 256 random bits, sent
/// only in an HttpOnly, Secure, SameSite=Strict cookie; every session has its own CSRF token.
/// A login always creates a new session (the pre-login one is dropped), so an id planted before
/// login is worth nothing after it (no session fixation).
final class WebSessionStore: Sendable {
    enum Stage: Sendable, Hashable {
        /// Before login: holds the login form's CSRF token.
        case anonymous
        /// Password accepted; the TOTP code is due.
        case needsCode
        /// Password accepted, no TOTP yet: enrolment with this secret is due.
        case enrolling(secret: String)
        /// Fully logged in.
        case active
    }

    struct Session: Sendable, Hashable {
        var id: String
        var csrf: String
        var stage: Stage
        var user: String?
        var role: AdminRole?
        /// "password" or "ldap".
        var source: String?
        var created: Double
        var lastSeen: Double
    }

    private let sessions = Mutex<[String: Session]>([:])
    private let lifetime: Double
    private let idle: Double
    /// Pre-login sessions cost nothing to create, so they expire quickly and are capped.
    static let anonymousLifetime: Double = 15 * 60
    static let maximumSessions = 10_000

    init(lifetime: Duration, idle: Duration) {
        self.lifetime = Double(lifetime.components.seconds)
        self.idle = Double(idle.components.seconds)
    }

    func create(stage: Stage, user: String?, role: AdminRole?, source: String?, now: Double) -> Session {
        let session = Session(id: PrivateFiles.randomToken(bytes: 32), csrf: PrivateFiles.randomToken(bytes: 32), stage: stage,
                              user: user, role: role, source: source, created: now, lastSeen: now)
        sessions.withLock { table in
            if table.count >= Self.maximumSessions {
                table = table.filter { !isExpired($0.value, now: now) }
                if table.count >= Self.maximumSessions {
                    // Drop the oldest pre-login sessions first, then the oldest of all.
                    let victims = table.values.sorted { ($0.stage == .anonymous ? 0 : 1, $0.lastSeen) < ($1.stage == .anonymous ? 0 : 1, $1.lastSeen) }
                    for victim in victims.prefix(table.count - Self.maximumSessions + 1) { table[victim.id] = nil }
                }
            }
            table[session.id] = session
        }
        return session
    }

    private func isExpired(_ s: Session, now: Double) -> Bool {
        if s.stage == .anonymous || s.stage == .needsCode { return now - s.created > Self.anonymousLifetime }
        if case .enrolling = s.stage { return now - s.created > Self.anonymousLifetime }
        return now - s.created > lifetime || now - s.lastSeen > idle
    }

    /// The live session with `id` (touching it), nil when unknown or expired.
    func session(_ id: String, now: Double) -> Session? {
        sessions.withLock { table in
            guard var s = table[id] else { return nil }
            if isExpired(s, now: now) {
                table[id] = nil
                return nil
            }
            s.lastSeen = now
            table[id] = s
            return s
        }
    }

    func remove(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }

    /// Ends every session of `user` (deleted, role changed, TOTP reset).
    func removeAll(user: String) {
        sessions.withLock { table in table = table.filter { $0.value.user != user } }
    }

    /// Seconds the session cookie lives in the browser.
    var cookieLifetime: Int { Int(lifetime) }
}
