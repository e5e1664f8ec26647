import NIOCore

/// Keep-alive enforcement (spec 3.1.2.10): a connection silent for one and a half times the keep
/// alive is closed. A keep alive of 0 turns the mechanism off.
public struct KeepAlive: Sendable, Equatable {
    public let interval: TimeAmount?

    public init(seconds: UInt16) {
        interval = seconds == 0 ? nil : .milliseconds(Int64(seconds) * 1500)
    }

    public func hasExpired(lastActivity: NIODeadline, now: NIODeadline) -> Bool {
        guard let interval else { return false }
        return now - lastActivity > interval
    }

    /// How often to look: a few times per grace period, at most once a second.
    public var checkInterval: TimeAmount? {
        guard let interval else { return nil }
        return min(.seconds(1), .nanoseconds(interval.nanoseconds / 4))
    }
}
