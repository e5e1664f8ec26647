import MQTTCodec

/// What SUBSCRIBE does to a session, filter by filter (spec 3.8.4): each is granted (new or
/// replacing an existing subscription) or refused with a reason code.
public enum SubscribeOutcome: Sendable, Equatable {
    case granted(Subscription, isNew: Bool)
    case refused(ReasonCode)

    public var reasonCode: ReasonCode {
        switch self {
        case .granted(let s, _): ReasonCode(rawValue: s.options.qos.rawValue)
        case .refused(let code): code
        }
    }
}

public enum SubscribeDecision {
    /// Decides every filter of `packet` against the session's subscriptions, the limits and the
    /// authorizer. Does not change the session: the caller applies the grants.
    public static func evaluate(
        _ packet: SubscribePacket, existing: [String: Subscription], limits: BrokerLimits,
        maySubscribe: (String) -> Bool
    ) -> [SubscribeOutcome] {
        var count = existing.count
        var bytes = existing.keys.reduce(0) { $0 + $1.utf8.count }
        var seen: Set<String> = []
        return packet.subscriptions.map { requested in
            do throws(TopicRules.FilterError) {
                try TopicRules.validateFilter(requested.filter, limits: limits.decoderLimits)
            } catch {
                return .refused(.topicFilterInvalid)
            }
            let length = requested.filter.utf8.count
            guard length <= limits.maximumFilterLength else { return .refused(.topicFilterInvalid) }
            let isNew = existing[requested.filter] == nil && !seen.contains(requested.filter)
            if isNew && count >= limits.maximumSubscriptionsPerClient { return .refused(.quotaExceeded) }
            if isNew && bytes + length > limits.maximumSubscriptionBytesPerClient { return .refused(.quotaExceeded) }
            guard maySubscribe(requested.filter) else { return .refused(.notAuthorized) }
            if isNew {
                count += 1
                bytes += length
            }
            seen.insert(requested.filter)
            return .granted(
                Subscription(filter: requested.filter, options: requested.options, identifier: packet.properties.subscriptionIdentifier),
                isNew: isNew)
        }
    }

    /// Whether retained messages are sent for a granted subscription (spec 3.3.1.3, Retain Handling).
    public static func sendsRetained(_ subscription: Subscription, isNew: Bool) -> Bool {
        if subscription.isShared { return false }
        switch subscription.options.retainHandling {
        case .sendOnSubscribe: return true
        case .sendIfNew: return isNew
        case .doNotSend: return false
        }
    }
}
