import Synchronization

/// What counts as flapping: `connections` sessions of one client id within `window` that each
/// lasted less than `shortSession` and did not end with a DISCONNECT (0 disables detection).
public struct FlapPolicy: Sendable, Hashable {
    public var connections: Int = 30
    public var window: Duration = .seconds(60)
    public var shortSession: Duration = .seconds(5)
    public var maximumTracked: Int = 65_536

    public init() {}
}

/// Detects a client id that connects and drops in a tight loop (a crashing device, or two devices
/// configured with one id taking the session from each other) and backs that client id off with
/// an automatic ban (exponential back-off). Flapping is a property of a client id, not of an
/// address: many different clients behind one address (a NAT, a TLS terminator, cron jobs) are not
/// flapping, and a session that ends with a DISCONNECT never counts.
public final class FlapDetector: Sendable {
    private let bans: BanList
    private let clock: any LimitClock
    private let state: Mutex<State>

    private struct State {
        var policy: FlapPolicy
        var log: SlidingWindowLog<FixedKey>

        init(policy: FlapPolicy) {
            self.policy = policy
            log = SlidingWindowLog(threshold: max(1, policy.connections), window: policy.window, maximumKeys: policy.maximumTracked)
        }
    }

    public init(policy: FlapPolicy = FlapPolicy(), bans: BanList, clock: any LimitClock = SystemLimitClock()) {
        self.bans = bans
        self.clock = clock
        self.state = Mutex(State(policy: policy))
    }

    public func updatePolicy(_ policy: FlapPolicy) {
        state.withLock { $0 = State(policy: policy) }
    }

    /// A session of `clientID` (after a successful CONNECT) ended after `duration`; `clean` when
    /// the client sent DISCONNECT. Returns the ban it caused, if any.
    @discardableResult
    public func sessionEnded(clientID: String, duration: Duration, clean: Bool) -> BanEntry? {
        guard !clean, !clientID.isEmpty else { return nil }
        let now = clock.now()
        let key = FixedKey(clientID)
        let flapping: Bool = state.withLock { state in
            guard state.policy.connections > 0, duration < state.policy.shortSession else { return false }
            guard state.log.record(key, now: now) >= state.policy.connections else { return false }
            state.log.reset(key)
            return true
        }
        return flapping ? bans.punish(.clientID(clientID), origin: .flapping) : nil
    }

    public var trackedKeys: Int { state.withLock { $0.log.count } }

    public func sweep() {
        let now = clock.now()
        state.withLock { $0.log.purge(now: now) }
    }
}
