import MQTTCodec

/// Shared subscriptions (`$share/GROUP/FILTER`, spec 4.8.2): which member of a group gets a
/// message, and who takes over the messages of a member that left.
public enum SharedSubscriptions {
    /// Round-robin over connected members; falls back to the next member in turn if none is
    /// connected (the message then waits in that member's session).
    public static func pickOnlineMember(_ members: [SubscriptionTrie.Entry], _ start: Int) -> Int? {
        guard !members.isEmpty else { return nil }
        for step in 0..<members.count {
            let i = (start + step) % members.count
            if members[i].subscriber.connection != nil { return i }
        }
        return start
    }

    /// The member that takes over a delivery of `departed`: a connected one if there is one,
    /// else any other member; nil when the departed member is the only one (the message stays
    /// with its session).
    public static func successor(for delivery: Delivery, departed: SessionHandle, in trie: SubscriptionTrie) -> (SessionHandle, Delivery)? {
        guard let filter = delivery.sharedFilter, let shared = SharedFilter(filter) else { return nil }
        let members = trie.sharedMembers(group: shared.group, filter: shared.filter)
        guard let target = members.first(where: { $0.subscriber !== departed && $0.subscriber.connection != nil })
            ?? members.first(where: { $0.subscriber !== departed }) else { return nil }
        var redelivery = Delivery(message: delivery.message, subscription: target.subscription)
        redelivery.qos = min(delivery.message.qos, target.subscription.options.qos)
        return (target.subscriber, redelivery)
    }
}
