import Synchronization

/// How failed console logins lock out a user name and a source address.
public struct LoginLockoutPolicy: Sendable, Hashable {
    /// Failures within `window` that lock the user name or address.
    public var failures = 5
    public var window: Double = 15 * 60
    /// First lock-out; doubles with each further lock-out …
    public var initialLock: Double = 30
    /// … up to this.
    public var maximumLock: Double = 15 * 60

    public init() {}
}

/// Counts failed logins per user name and per address and locks each out, with exponential
/// back-off, once it fails too often. A locked login is refused before any password is hashed.
/// Bounded: at most `maximumKeys` keys, the stalest dropped first.
final class LoginThrottle: Sendable {
    enum Key: Hashable {
        case user(String)
        case address(String)
    }

    private struct Entry {
        var recent: [Double] = []
        var lockedUntil: Double = 0
        var lockouts = 0
        var lastSeen: Double = 0
    }

    private let policy: LoginLockoutPolicy
    private let entries = Mutex<[Key: Entry]>([:])
    static let maximumKeys = 10_000

    init(policy: LoginLockoutPolicy) {
        self.policy = policy
    }

    /// Seconds until the user name or the address may try again; nil when neither is locked.
    func retryAfter(user: String, address: String, now: Double) -> Double? {
        entries.withLock { table in
            let until = max(table[.user(user.lowercased())]?.lockedUntil ?? 0, table[.address(address)]?.lockedUntil ?? 0)
            return until > now ? until - now : nil
        }
    }

    /// Records a failure; returns true when it locked the user name or the address.
    @discardableResult
    func failed(user: String, address: String, now: Double) -> Bool {
        entries.withLock { table in
            var locked = false
            for key in [Key.user(user.lowercased()), .address(address)] {
                var entry = table[key] ?? Entry()
                entry.recent = entry.recent.filter { now - $0 < policy.window }
                entry.recent.append(now)
                entry.lastSeen = now
                if entry.recent.count >= policy.failures {
                    let lock = min(policy.maximumLock, policy.initialLock * Double(1 << min(entry.lockouts, 20)))
                    entry.lockedUntil = now + lock
                    entry.lockouts += 1
                    entry.recent = []
                    locked = true
                }
                table[key] = entry
            }
            if table.count > Self.maximumKeys {
                let stalest = table.filter { $0.value.lockedUntil <= now }.sorted { $0.value.lastSeen < $1.value.lastSeen }
                for (key, _) in stalest.prefix(table.count - Self.maximumKeys) { table[key] = nil }
            }
            return locked
        }
    }

    /// A successful login forgets the user name's failures (the address keeps its record: one
    /// good password must not launder a scan of others).
    func succeeded(user: String) {
        _ = entries.withLock { $0.removeValue(forKey: .user(user.lowercased())) }
    }
}
