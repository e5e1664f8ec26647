import MQTTCodec
import NIOCore

/// Converts between the live broker state (monotonic deadlines, `Message` objects) and what the
/// durable store keeps (wall-clock times, plain records). Clocks are passed in; the server reads them.
public enum StoreMapping {
    public static func wall(_ deadline: NIODeadline?, now: NIODeadline, wallNow: WallClock) -> WallClock? {
        deadline.map { wallNow + Double(($0 - now).nanoseconds) / 1e9 }
    }

    public static func deadline(_ wall: WallClock?, now: NIODeadline, wallNow: WallClock) -> NIODeadline? {
        wall.map { now + .nanoseconds(Int64(($0 - wallNow) * 1e9)) }
    }

    public static func stored(_ message: Message, now: NIODeadline, wallNow: WallClock) -> StoredMessage {
        StoredMessage(
            id: message.id, topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain,
            properties: message.properties, publisherClientID: message.publisherClientID,
            expiresAt: wall(message.expiresAt, now: now, wallNow: wallNow))
    }

    public static func message(_ stored: StoredMessage, now: NIODeadline, wallNow: WallClock) -> Message {
        Message(
            id: stored.id, topic: stored.topic, payload: stored.payload, qos: stored.qos, retain: stored.retain,
            properties: stored.properties, publisherClientID: stored.publisherClientID,
            expiresAt: deadline(stored.expiresAt, now: now, wallNow: wallNow))
    }

    public static func storedDelivery(_ delivery: Delivery, packetID: UInt16? = nil, released: Bool = false) -> StoredDelivery {
        StoredDelivery(
            messageID: delivery.message.id, qos: delivery.qos, retain: delivery.retain,
            subscriptionIdentifiers: delivery.subscriptionIdentifiers, sharedFilter: delivery.sharedFilter,
            packetID: packetID, released: released)
    }

    public static func record(_ state: SessionState, owner: String, disconnectedAt: WallClock?) -> StoredSessionRecord {
        StoredSessionRecord(
            clientID: state.clientID, expiryInterval: state.expiryInterval,
            subscriptions: state.subscriptions.values.sorted { $0.filter < $1.filter }, disconnectedAt: disconnectedAt,
            owner: owner)
    }

    /// Rebuilds a session's live state: sent messages go back in flight with their packet ids
    /// (redelivered with DUP on reconnect), the rest wait in the queue in their original order.
    public static func sessionState(_ stored: StoredSession, messages: [MessageID: Message], limits: BrokerLimits) -> SessionState {
        var state = SessionState(clientID: stored.record.clientID, expiryInterval: stored.record.expiryInterval)
        for subscription in stored.record.subscriptions { state.subscriptions[subscription.filter] = subscription }
        state.inboundQoS2 = Set(stored.inboundQoS2)
        for row in stored.deliveries {
            guard let message = messages[row.messageID] else { continue }
            let delivery = Delivery(
                message: message, qos: row.qos, retain: row.retain, subscriptionIdentifiers: row.subscriptionIdentifiers,
                sharedFilter: row.sharedFilter)
            if let packetID = row.packetID {
                state.outbound.restoreInflight(delivery, packetID: packetID, released: row.released)
            } else {
                var unbounded = limits
                unbounded.maximumQueuedMessages = .max
                unbounded.maximumQueuedBytes = .max
                _ = state.outbound.enqueue(delivery, limits: unbounded)
            }
        }
        return state
    }
}

extension MQTTPacket {
    /// The same acknowledgement with another reason code (used when a store commit failed).
    public func withReason(_ reason: ReasonCode, reasonString: String?) -> MQTTPacket {
        switch self {
        case .puback(var p):
            p.reasonCode = reason
            p.properties.reasonString = reasonString
            return .puback(p)
        case .pubrec(var p):
            p.reasonCode = reason
            p.properties.reasonString = reasonString
            return .pubrec(p)
        default:
            return self
        }
    }
}
