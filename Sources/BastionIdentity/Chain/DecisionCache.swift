import BastionCore
import Crypto
import DequeModule
import NIOCore
import Synchronization

/// Recent decisions of the chain, so a device that reconnects with the same credentials is
/// answered without asking its backend again. Keyed by an HMAC (random key per chain) of
/// everything a backend may decide on: user name, password, client id, listener, address and
/// certificate; the password itself is never kept. Entries live `ttl` (a token's expiry cuts
/// that short); at most `maximumEntries` and `maximumWeight` bytes of rule text and names are
/// kept, the oldest going first. A reload builds a new chain, and so a new, empty cache.
public final class DecisionCache: Sendable {
    public enum Outcome: Sendable, Equatable {
        case allowed(BackendGrant, by: String)
        case refused(AuthenticationRefusal)
    }

    struct Key: Hashable, Sendable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
    }

    private struct Slot {
        var outcome: Outcome
        var expires: NIODeadline
        var serial: UInt64
        var weight: Int
    }

    private struct State {
        var table: [Key: Slot] = [:]
        var order = Deque<(key: Key, serial: UInt64)>()
        var serial: UInt64 = 0
        var weight = 0
    }

    public let ttl: Duration
    public let maximumEntries: Int
    public let maximumWeight: Int
    private let key = SymmetricKey(size: .bits256)
    private let clock: @Sendable () -> NIODeadline
    private let state = Mutex(State())

    public init(ttl: Duration, maximumEntries: Int = 10_000, maximumWeight: Int = 16 * 1024 * 1024,
                clock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.ttl = ttl
        self.maximumEntries = max(1, maximumEntries)
        self.maximumWeight = max(1, maximumWeight)
        self.clock = clock
    }

    public var count: Int { state.withLock { $0.table.count } }

    func key(for request: AuthenticationRequest) -> Key {
        var mac = HMAC<SHA256>(key: key)
        func add(_ bytes: some Collection<UInt8>, present: Bool = true) {
            // Length-prefixed, so no two different requests feed the same bytes.
            var header = [UInt8(present ? 1 : 0)]
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { header.append(contentsOf: $0) }
            mac.update(data: header)
            mac.update(data: Array(bytes))
        }
        add(Array((request.username ?? "").utf8), present: request.username != nil)
        add(request.password ?? [], present: request.password != nil)
        add(Array(request.clientID.utf8))
        add(Array(request.listener.utf8))
        add(Array((request.remoteHost ?? "").utf8))
        add(Array((request.certificateIdentity ?? "").utf8), present: request.certificateIdentity != nil)
        add(Array((request.certificateFingerprint ?? "").utf8), present: request.certificateFingerprint != nil)
        let bytes = Array(mac.finalize())
        func word(_ i: Int) -> UInt64 { bytes[i..<(i + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        return Key(a: word(0), b: word(8), c: word(16), d: word(24))
    }

    public func lookup(_ request: AuthenticationRequest) -> Outcome? {
        let key = key(for: request)
        let now = clock()
        return state.withLock { state in
            guard let slot = state.table[key] else { return nil }
            guard now < slot.expires else {
                state.table[key] = nil
                state.weight -= slot.weight
                return nil
            }
            return slot.outcome
        }
    }

    /// Remembers `outcome` for `request`, for `ttl` or until `expiresAt` (seconds since 1970,
    /// compared with `wallNow`) when that is sooner.
    public func insert(_ outcome: Outcome, for request: AuthenticationRequest, expiresAt: Double? = nil, wallNow: Double) {
        var lifetime = ttl
        if let expiresAt {
            let remaining = expiresAt - wallNow
            guard remaining > 0 else { return }
            lifetime = min(lifetime, .milliseconds(Int64(remaining * 1000)))
        }
        guard lifetime > .zero else { return }
        let key = key(for: request)
        let expires = clock() + TimeAmount(lifetime)
        let weight = Self.weight(of: outcome)
        state.withLock { state in
            state.serial += 1
            if let old = state.table[key] { state.weight -= old.weight }
            state.table[key] = Slot(outcome: outcome, expires: expires, serial: state.serial, weight: weight)
            state.order.append((key, state.serial))
            state.weight += weight
            while state.table.count > maximumEntries || state.weight > maximumWeight, let oldest = state.order.popFirst() {
                if let slot = state.table[oldest.key], slot.serial == oldest.serial {
                    state.table[oldest.key] = nil
                    state.weight -= slot.weight
                }
            }
            // Replaced and expired keys leave stale entries in `order`; keep it near the table's size.
            if state.order.count > 2 * maximumEntries {
                let table = state.table
                state.order = Deque(state.order.filter { table[$0.key]?.serial == $0.serial })
            }
        }
    }

    public func removeAll() {
        state.withLock { $0 = State() }
    }

    /// Roughly the bytes an entry holds beyond its fixed size.
    private static func weight(of outcome: Outcome) -> Int {
        switch outcome {
        case .allowed(let grant, let backend):
            var total = 128 + backend.utf8.count + (grant.username?.utf8.count ?? 0)
            for rule in grant.rules ?? [] { total += 48 + rule.filter.utf8.count + rule.source.utf8.count }
            for role in grant.roles { total += 16 + role.utf8.count }
            return total
        case .refused(let refusal):
            return 128 + refusal.detail.utf8.count
        }
    }
}
