import Synchronization

/// Thresholds for failed authentications (0 disables a counter).
public struct AuthFailurePolicy: Sendable, Hashable {
    /// Failures from one source address within `window` that ban the address.
    public var perAddress: Int = 10
    /// Failures for one user name (from any address) within `window` that ban the user name.
    public var perUsername: Int = 20
    public var window: Duration = .seconds(60)
    public var maximumTracked: Int = 65_536

    public init() {}
}

/// Counts failed authentications per source address and per user name in a sliding window; a
/// threshold crossed becomes an automatic ban (with the ban list's back-off).
public final class AuthFailureTracker: Sendable {
    private let bans: BanList
    private let clock: any LimitClock
    private let state: Mutex<State>

    private struct State {
        var policy: AuthFailurePolicy
        var byAddress: SlidingWindowLog<IPAddress>
        var byUsername: SlidingWindowLog<String>

        init(policy: AuthFailurePolicy) {
            self.policy = policy
            byAddress = SlidingWindowLog(threshold: max(1, policy.perAddress), window: policy.window, maximumKeys: policy.maximumTracked)
            byUsername = SlidingWindowLog(threshold: max(1, policy.perUsername), window: policy.window, maximumKeys: policy.maximumTracked)
        }
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

    /// Records one failed authentication; returns the bans it caused (already in the ban list).
    @discardableResult
    public func failed(ip: IPAddress?, username: String?) -> [BanEntry] {
        let now = clock.now()
        let (banAddress, banUser): (Bool, Bool) = state.withLock { state in
            var banAddress = false
            var banUser = false
            if let ip, state.policy.perAddress > 0,
               state.byAddress.record(ip, now: now) >= state.policy.perAddress {
                state.byAddress.reset(ip)
                banAddress = true
            }
            if let username, !username.isEmpty, state.policy.perUsername > 0,
               state.byUsername.record(username, now: now) >= state.policy.perUsername {
                state.byUsername.reset(username)
                banUser = true
            }
            return (banAddress, banUser)
        }
        var issued: [BanEntry] = []
        if banAddress, let ip, let entry = bans.punish(.ip(ip), origin: .authFailures) { issued.append(entry) }
        if banUser, let username, let entry = bans.punish(.username(username), origin: .authFailures) { issued.append(entry) }
        return issued
    }

    /// Drops counters with nothing inside the window. Call periodically.
    public func sweep() {
        let now = clock.now()
        state.withLock {
            $0.byAddress.purge(now: now)
            $0.byUsername.purge(now: now)
        }
    }
}
