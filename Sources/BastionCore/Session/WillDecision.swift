import MQTTCodec

/// What happens to a connection's will when the connection ends (spec 3.1.2.5, 3.1.3.2, 3.14.4).
public enum WillDecision: Sendable, Equatable {
    /// No will, or the client disconnected normally.
    case discard
    /// Publish now: no delay, or the session ends with the connection.
    case publishNow
    /// Publish after this many seconds unless the client reconnects to the session first.
    case publishAfter(seconds: UInt32)

    /// - Parameters:
    ///   - willDelay: 5.0 Will Delay Interval (0 for 3.1.1).
    ///   - sessionExpiry: the session's expiry interval at disconnect; the will is sent at the latest
    ///     when the session ends.
    ///   - normalDisconnect: DISCONNECT received with a reason other than 0x04.
    public static func onConnectionEnd(hasWill: Bool, willDelay: UInt32, sessionExpiry: UInt32, normalDisconnect: Bool) -> WillDecision {
        guard hasWill, !normalDisconnect else { return .discard }
        if willDelay == 0 || sessionExpiry == 0 { return .publishNow }
        return .publishAfter(seconds: min(willDelay, sessionExpiry))
    }
}
