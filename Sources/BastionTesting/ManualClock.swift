import NIOCore
import Synchronization

/// A monotonic clock that moves only when a test says so.
public final class ManualClock: Sendable {
    private let value = Mutex(NIODeadline.uptimeNanoseconds(1_000_000_000))

    public init() {}

    public var now: NIODeadline { value.withLock { $0 } }

    public func advance(_ amount: TimeAmount) { value.withLock { $0 = $0 + amount } }
}
