import MQTTCodec
import NIOCore

/// Retained messages (spec 3.3.1.3): what a new subscription receives, and what a retained
/// PUBLISH does to the store.
public enum RetainedMessages {
    /// The retained messages a new subscription receives: every unexpired one matching its filter,
    /// at min(message QoS, granted QoS), always with the retain flag, with its subscription id.
    public static func deliveries(for subscription: Subscription, in store: RetainedStore, now: NIODeadline) -> [Delivery] {
        store.matching(subscription.topicFilter).compactMap { message in
            guard !message.isExpired(at: now) else { return nil }
            return Delivery(
                message: message, qos: min(message.qos, subscription.options.qos), retain: true,
                subscriptionIdentifiers: subscription.identifier.map { [$0] } ?? [])
        }
    }

    /// The durable form of a retained PUBLISH the store accepted: an empty payload clears the topic.
    public static func storeOperation(for message: Message, stored: (Message) -> StoredMessage) -> StoreOperation {
        message.payload.readableBytes == 0 ? .clearRetained(topic: message.topic) : .setRetained(stored(message))
    }
}
