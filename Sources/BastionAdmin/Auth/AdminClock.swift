#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Wall-clock seconds since the Unix epoch: session expiry, lock-outs and TOTP steps all read
/// this one clock, so tests move them together with a `ManualAdminClock`.
public protocol AdminClock: Sendable {
    func now() -> Double
}

public struct SystemAdminClock: AdminClock {
    public init() {}

    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A clock tests set by hand.
public final class ManualAdminClock: AdminClock {
    private let seconds: Mutex<Double>

    public init(_ start: Double = 1_700_000_000) { seconds = Mutex(start) }

    public func now() -> Double { seconds.withLock { $0 } }

    public func advance(_ by: Double) { seconds.withLock { $0 += by } }
}
