import MQTTCodec
import NIOCore

/// DISCONNECT (spec 3.14) and what the end of a connection does: the will (3.1.2.5), the session
/// going offline or ending (4.1), and shared-subscription deliveries handed on (4.8.2).
extension SessionMachine {
    public enum DisconnectAction: Sendable, Equatable {
        /// Close; `reason` is for the log.
        case close(reason: String)
        case violation(ReasonCode, String)
    }

    /// DISCONNECT from the client. `maximumSessionExpiry` caps a new Session Expiry Interval.
    public mutating func disconnectReceived(_ packet: DisconnectPacket) -> DisconnectAction {
        if version == .v5, let requested = packet.properties.sessionExpiryInterval, state != nil {
            guard !(connectExpiryInterval == 0 && requested != 0) else {
                // Not a valid DISCONNECT, so the will is still sent (spec 3.14.2.2.2).
                return .violation(.protocolError, "session expiry cannot be set on DISCONNECT when CONNECT had 0")
            }
            let expiry = limits.maximumSessionExpiry.map { min(requested, $0) } ?? requested
            withState { $0.expiryInterval = expiry }
        }
        // 0x04 asks for the will to be sent; any other reason discards it (spec 3.14.4).
        if packet.reasonCode != .disconnectWithWillMessage { willSuppressed = true }
        cleanDisconnect = true
        return .close(reason: version == .v5 ? "client disconnected (\(packet.reasonCode))" : "client disconnected")
    }

    /// What the connection's end does to its session.
    public struct Ending: Sendable {
        /// The session state, to keep offline or end.
        public var state: SessionState
        /// Deliveries that came through shared subscriptions: another member takes them.
        public var shared: [Delivery]
        public var will: Will.Plan
    }

    /// The connection is gone (or was taken over): returns its session state, the will plan and
    /// the shared deliveries to hand on, and closes the machine. Nil when it held no session.
    public mutating func connectionEnded(willMessageID: () -> MessageID, now: NIODeadline) -> Ending? {
        guard var state = takeState() else { return nil }
        let shared = state.outbound.takeSharedDeliveries()
        let plan = Will.plan(will, version: version, sessionExpiry: state.expiryInterval, suppressed: willSuppressed,
                             publisher: clientID, messageID: willMessageID, now: now)
        willBox = nil
        return Ending(state: state, shared: shared, will: plan)
    }
}
