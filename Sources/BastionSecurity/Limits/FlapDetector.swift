import Synchronization

/// What counts as flapping: `connections` sockets from one address within `window`, each of which
/// lasted less than `shortSession` (0 connections disables detection).
public struct FlapPolicy: Sendable, Hashable {
    public var connections: Int = 30
    public var window: Duration = .seconds(60)
    public var shortSession: Duration = .seconds(5)
    public var maximumTracked: Int = 65_536

    public init() {}
}

/// Detects clients that connect and disconnect in a tight loop and bans their address the same
/// way as brute force (automatic ban, exponential back-off).
public final class FlapDetector: Sendable {
    private let bans: BanList
    private let clock: any LimitClock
    private let state: Mutex<State>

    private struct State {
        var policy: FlapPolicy
        var log: SlidingWindowLog<IPAddress>

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

    /// A socket admitted from `ip` closed after `duration`. Returns the ban it caused, if any.
    @discardableResult
    public func connectionClosed(ip: IPAddress, duration: Duration) -> BanEntry? {
        let now = clock.now()
        let flapping: Bool = state.withLock { state in
            guard state.policy.connections > 0, duration < state.policy.shortSession else { return false }
            guard state.log.record(ip, now: now) >= state.policy.connections else { return false }
            state.log.reset(ip)
            return true
        }
        return flapping ? bans.punish(.ip(ip), origin: .flapping) : nil
    }

    public func sweep() {
        let now = clock.now()
        state.withLock { $0.log.purge(now: now) }
    }
}
