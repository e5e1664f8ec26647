import Crypto
import Synchronization

/// Logins that succeeded recently, so a device that reconnects with the same credentials is
/// admitted without another KDF run (and cannot be kept waiting behind unauthenticated hashing
/// work). Holds a keyed HMAC of user name and password, never the password; the key is random per
/// process. Bounded by count; entries expire after `lifetime`. A new password file (reload) comes
/// with a new, empty cache.
public final class VerifiedCredentialCache: Sendable {
    private let key = SymmetricKey(size: .bits256)
    private let lifetime: Duration
    private let maximumEntries: Int
    private let clock: any LimitClock
    private let entries = Mutex<[Digest: MonotonicInstant]>([:])

    struct Digest: Hashable, Sendable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
    }

    public init(lifetime: Duration = .seconds(300), maximumEntries: Int = 100_000, clock: any LimitClock = SystemLimitClock()) {
        self.lifetime = lifetime
        self.maximumEntries = maximumEntries
        self.clock = clock
    }

    private func digest(username: String, password: [UInt8]) -> Digest {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array(username.utf8))
        mac.update(data: [0])
        mac.update(data: password)
        let bytes = Array(mac.finalize())
        func word(_ i: Int) -> UInt64 { bytes[i..<(i + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        return Digest(a: word(0), b: word(8), c: word(16), d: word(24))
    }

    /// Whether these exact credentials succeeded within the lifetime.
    public func contains(username: String, password: [UInt8]) -> Bool {
        let d = digest(username: username, password: password)
        let now = clock.now()
        return entries.withLock { $0[d].map { now < $0 } ?? false }
    }

    public func insert(username: String, password: [UInt8]) {
        let d = digest(username: username, password: password)
        let now = clock.now()
        entries.withLock { table in
            if table[d] == nil, table.count >= maximumEntries {
                table = table.filter { now < $0.value }
                if table.count >= maximumEntries { table.removeAll(keepingCapacity: true) }
            }
            table[d] = now + lifetime
        }
    }
}
