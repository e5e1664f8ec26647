import Synchronization

/// A point on a monotonic timeline (an offset from an arbitrary origin). Limits logic takes time as
/// a value, so every decision can be tested by moving a manual clock instead of sleeping.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var sinceOrigin: Duration

    public init(sinceOrigin: Duration) {
        self.sinceOrigin = sinceOrigin
    }

    public static let origin = MonotonicInstant(sinceOrigin: .zero)

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.sinceOrigin < rhs.sinceOrigin
    }

    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        MonotonicInstant(sinceOrigin: lhs.sinceOrigin + rhs)
    }

    public static func - (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        MonotonicInstant(sinceOrigin: lhs.sinceOrigin - rhs)
    }

    public static func - (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Duration {
        lhs.sinceOrigin - rhs.sinceOrigin
    }
}

/// The time source the shared limit trackers read.
public protocol LimitClock: Sendable {
    func now() -> MonotonicInstant
}

/// The process's monotonic clock (does not jump with wall-clock changes).
public struct SystemLimitClock: LimitClock {
    private static let origin = ContinuousClock.now

    public init() {}

    public func now() -> MonotonicInstant {
        MonotonicInstant(sinceOrigin: ContinuousClock.now - Self.origin)
    }
}

/// A clock that only moves when told to; for tests and simulations.
public final class ManualLimitClock: LimitClock {
    private let current: Mutex<MonotonicInstant>

    public init(_ start: MonotonicInstant = .origin) {
        current = Mutex(start)
    }

    public func now() -> MonotonicInstant { current.withLock { $0 } }

    public func advance(by duration: Duration) {
        current.withLock { $0 = $0 + duration }
    }
}

extension Duration {
    /// Seconds as a floating-point number (for rates and JSON).
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// A duration from fractional seconds, clamped to a sane range so a config value cannot trap.
    public static func clampedSeconds(_ value: Double) -> Duration {
        guard value.isFinite, value > 0 else { return .zero }
        let capped = min(value, 1e9)
        return .nanoseconds(Int64(capped * 1e9))
    }
}
