import BastionCore
import Synchronization

/// Thresholds for failed authentications and other evidence of attack (0 disables a counter).
public struct AuthFailurePolicy: Sendable, Hashable {
    /// Failed authentications from one source address within `window` that ban the address.
    public var perAddress: Int = 10
    /// Costly failures for one user name (from any address) within `window` after which the user
    /// name is throttled for the sources that failed (see `AuthFailureTracker`).
    public var perUsername: Int = 20
    /// Protocol violations before CONNECT and half-open connections (no CONNECT in time) from one
    /// address within `window` that ban the address.
    public var protocolViolationsPerAddress: Int = 30
    public var window: Duration = .seconds(60)
    /// How long a user name stays throttled for its failing sources once `perUsername` is reached.
    public var userThrottle: Duration = .seconds(60)
    /// A source that logged in as a user within this time is never throttled for that user.
    public var trustedSuccess: Duration = .seconds(24 * 3600)
    public var maximumTracked: Int = 65_536
    /// Memory the counters may hold in all (keys are fixed-size hashes, so this bounds them whatever
    /// user names clients send).
    public var maximumBytes: Int = 16 * 1024 * 1024

    public init() {}
}

/// Counts failed authentications and pre-CONNECT violations per source address and per user name
/// in sliding windows.
///
/// - An address crossing `perAddress` failures or `protocolViolationsPerAddress` violations is
///   banned through the ban list (which exempts trusted networks).
/// - A user name crossing `perUsername` costly failures is not banned everywhere — that would lock
///   its owner out with nothing but its name. It is throttled for `userThrottle`, and only for the
///   sources that failed for it; a source that logged in as that user recently, or that has not
///   failed for it, may still log in.
///
/// Memory is bounded: user names are kept as fixed-size `FixedKey`s, every table is capped by
/// count and bytes, and the least recently seen keys go first.
public final class AuthFailureTracker: Sendable {
    private let bans: BanList
    private let clock: any LimitClock
    private let state: Mutex<State>

    private struct State {
        var policy: AuthFailurePolicy
        var byAddress: SlidingWindowLog<IPAddress>
        var violations: SlidingWindowLog<IPAddress>
        var byUsername: SlidingWindowLog<FixedKey>
        /// (user name, address) pairs with a costly failure: the sources a throttle applies to.
        var failingSources: SlidingWindowLog<FixedKey>
        var throttledUsers: BoundedExpiringSet<FixedKey>
        var recentSuccesses: BoundedExpiringSet<FixedKey>

        init(policy: AuthFailurePolicy) {
            self.policy = policy
            // Six tables share the byte budget.
            let share = max(4096, policy.maximumBytes / 6)
            let keys = policy.maximumTracked
            byAddress = SlidingWindowLog(threshold: max(1, policy.perAddress), window: policy.window, maximumKeys: keys, maximumBytes: share)
            violations = SlidingWindowLog(
                threshold: max(1, policy.protocolViolationsPerAddress), window: policy.window, maximumKeys: keys, maximumBytes: share)
            byUsername = SlidingWindowLog(threshold: max(1, policy.perUsername), window: policy.window, maximumKeys: keys, maximumBytes: share)
            failingSources = SlidingWindowLog(threshold: 1, window: max(policy.window, policy.userThrottle), maximumKeys: keys, maximumBytes: share)
            throttledUsers = BoundedExpiringSet(maximumKeys: keys, maximumBytes: share)
            recentSuccesses = BoundedExpiringSet(maximumKeys: keys, maximumBytes: share)
        }

        var keys: Int {
            byAddress.count + violations.count + byUsername.count + failingSources.count + throttledUsers.count + recentSuccesses.count
        }

        var bytes: Int {
            byAddress.approximateBytes + violations.approximateBytes + byUsername.approximateBytes + failingSources.approximateBytes
                + throttledUsers.approximateBytes + recentSuccesses.approximateBytes
        }
    }

    /// What a failure led to.
    public struct Outcome: Sendable, Equatable {
        /// Address bans issued (already in the ban list).
        public var bans: [BanEntry] = []
        /// The user name became throttled for its failing sources with this failure.
        public var userThrottled = false
    }

    public init(policy: AuthFailurePolicy = AuthFailurePolicy(), bans: BanList, clock: any LimitClock = SystemLimitClock()) {
        self.bans = bans
        self.clock = clock
        self.state = Mutex(State(policy: policy))
    }

    /// Replaces the policy; counts start over.
    public func updatePolicy(_ policy: AuthFailurePolicy) {
        state.withLock { $0 = State(policy: policy) }
    }

    /// Records one failed authentication.
    @discardableResult
    public func failed(ip: IPAddress?, username: String?, weight: AuthFailureWeight = .costly) -> Outcome {
        guard weight != .none else { return Outcome() }
        let now = clock.now()
        let user = username.flatMap { $0.isEmpty ? nil : $0 }
        var outcome = Outcome()
        let banAddress: Bool = state.withLock { state in
            var banAddress = false
            if let ip, state.policy.perAddress > 0, state.byAddress.record(ip, now: now) >= state.policy.perAddress {
                state.byAddress.reset(ip)
                banAddress = true
            }
            if weight == .costly, let user, state.policy.perUsername > 0 {
                let key = FixedKey(user)
                if let ip { _ = state.failingSources.record(FixedKey(user, ip), now: now) }
                if state.byUsername.record(key, now: now) >= state.policy.perUsername {
                    state.byUsername.reset(key)
                    outcome.userThrottled = !state.throttledUsers.contains(key, now: now)
                    state.throttledUsers.insert(key, until: now + state.policy.userThrottle, now: now)
                }
            }
            return banAddress
        }
        if banAddress, let ip, let entry = bans.punish(.ip(ip), origin: .authFailures) { outcome.bans.append(entry) }
        return outcome
    }

    /// A protocol violation before CONNECT, or a connection that sent no CONNECT in time. Returns
    /// the address ban it caused, if any.
    @discardableResult
    public func violation(ip: IPAddress) -> BanEntry? {
        let now = clock.now()
        let ban: Bool = state.withLock { state in
            guard state.policy.protocolViolationsPerAddress > 0,
                  state.violations.record(ip, now: now) >= state.policy.protocolViolationsPerAddress else { return false }
            state.violations.reset(ip)
            return true
        }
        return ban ? bans.punish(.ip(ip), origin: .protocolViolations) : nil
    }

    /// A successful login: this source is trusted for this user name from now on.
    public func succeeded(ip: IPAddress?, username: String?) {
        guard let ip, let username, !username.isEmpty else { return }
        let now = clock.now()
        state.withLock { state in
            let pair = FixedKey(username, ip)
            state.failingSources.reset(pair)
            state.recentSuccesses.insert(pair, until: now + state.policy.trustedSuccess, now: now)
        }
    }

    /// Whether a login as `username` from `ip` is refused without checking the password: the user
    /// name is throttled and this source failed for it (and did not log in as it recently).
    public func isThrottled(ip: IPAddress?, username: String?) -> Bool {
        guard let username, !username.isEmpty else { return false }
        let now = clock.now()
        return state.withLock { state in
            guard state.throttledUsers.contains(FixedKey(username), now: now) else { return false }
            guard let ip else { return true }
            let pair = FixedKey(username, ip)
            if state.recentSuccesses.contains(pair, now: now) { return false }
            return state.failingSources.count(pair, now: now) > 0
        }
    }

    /// Keys held and their estimated memory, for metrics.
    public var usage: (keys: Int, bytes: Int) { state.withLock { ($0.keys, $0.bytes) } }

    /// Drops counters with nothing inside the window. Call periodically.
    public func sweep() {
        let now = clock.now()
        state.withLock {
            $0.byAddress.purge(now: now)
            $0.violations.purge(now: now)
            $0.byUsername.purge(now: now)
            $0.failingSources.purge(now: now)
            $0.throttledUsers.purge(now: now)
            $0.recentSuccesses.purge(now: now)
        }
    }
}

/// Keys with an expiry, capped by count and bytes; when full, expired keys go first, then the
/// ones that expire soonest.
struct BoundedExpiringSet<Key: Hashable & Sendable>: Sendable {
    private var expiries: [Key: MonotonicInstant] = [:]
    let maximumKeys: Int

    init(maximumKeys: Int, maximumBytes: Int) {
        self.maximumKeys = max(1, min(maximumKeys, maximumBytes / Self.bytesPerKey))
    }

    static var bytesPerKey: Int { MemoryLayout<Key>.stride + MemoryLayout<MonotonicInstant>.stride + 16 }

    var count: Int { expiries.count }
    var approximateBytes: Int { expiries.count * Self.bytesPerKey }

    func contains(_ key: Key, now: MonotonicInstant) -> Bool {
        expiries[key].map { now < $0 } ?? false
    }

    mutating func insert(_ key: Key, until expiry: MonotonicInstant, now: MonotonicInstant) {
        if expiries[key] == nil, expiries.count >= maximumKeys {
            purge(now: now)
            if expiries.count >= maximumKeys {
                let soonest = expiries.sorted { $0.value < $1.value }.prefix(max(1, expiries.count / 2))
                for (key, _) in soonest { expiries[key] = nil }
            }
        }
        expiries[key] = max(expiry, expiries[key] ?? expiry)
    }

    mutating func purge(now: MonotonicInstant) {
        expiries = expiries.filter { now < $0.value }
    }
}
