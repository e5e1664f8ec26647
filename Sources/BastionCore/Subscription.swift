import MQTTCodec

/// One entry of a session's subscription list, exactly as the client asked for it.
public struct Subscription: Sendable, Hashable {
    /// The filter as sent, including a `$share/GROUP/` prefix.
    public var filter: String {
        didSet { isShared = filter.hasPrefix("$share/") }
    }
    public var options: SubscribePacket.Options
    public var identifier: UInt32?
    /// A `$share/GROUP/FILTER` subscription (decided once, not per message).
    public private(set) var isShared: Bool

    public init(filter: String, options: SubscribePacket.Options, identifier: UInt32? = nil) {
        self.filter = filter
        self.options = options
        self.identifier = identifier
        self.isShared = filter.hasPrefix("$share/")
    }

    /// The matching part: the filter without `$share/GROUP/`.
    public var topicFilter: String { SharedFilter(filter)?.filter ?? filter }
    public var shareGroup: String? { SharedFilter(filter)?.group }
}

/// How one message reaches one session: the merge of every subscription of that session that
/// matched (spec 3.3.4: one copy, maximum QoS, all subscription identifiers).
public struct Delivery: Sendable {
    public var message: Message
    public var qos: QoS
    public var retain: Bool
    public var subscriptionIdentifiers: [UInt32]
    /// The `$share/GROUP/FILTER` this came through, so a departing member can hand it on.
    public var sharedFilter: String?

    public init(message: Message, qos: QoS, retain: Bool, subscriptionIdentifiers: [UInt32] = [], sharedFilter: String? = nil) {
        self.message = message
        self.qos = qos
        self.retain = retain
        self.subscriptionIdentifiers = subscriptionIdentifiers
        self.sharedFilter = sharedFilter
    }

    /// A live message for a subscription: QoS downgraded to the grant, retain per Retain As Published.
    public init(message: Message, subscription: Subscription) {
        self.message = message
        self.qos = min(message.qos, subscription.options.qos)
        self.retain = subscription.options.retainAsPublished ? message.retain : false
        self.subscriptionIdentifiers = subscription.identifier.map { [$0] } ?? []
        self.sharedFilter = subscription.isShared ? subscription.filter : nil
    }

    /// Folds another matching subscription of the same session into this delivery.
    public mutating func merge(_ subscription: Subscription) {
        qos = max(qos, min(message.qos, subscription.options.qos))
        if subscription.options.retainAsPublished && message.retain { retain = true }
        if let id = subscription.identifier, !subscriptionIdentifiers.contains(id) { subscriptionIdentifiers.append(id) }
    }
}
