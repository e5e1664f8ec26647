import MQTTCodec

/// SUBSCRIBE and UNSUBSCRIBE (spec 3.8–3.11): decided per filter against the session's
/// subscriptions, the limits and the grant; the connection updates every loop's index, stores the
/// list of a persistent session, then acknowledges and sends retained messages.
extension SessionMachine {
    public struct SubscribePlan: Sendable {
        public var outcomes: [SubscribeOutcome]
        /// Index changes to apply on every loop before the SUBACK.
        public var changes: [SubscriptionChange]
        /// Subscriptions added (to count them).
        public var added: Int
        public var suback: SubackPacket
        /// Granted subscriptions whose retained messages are sent after the SUBACK.
        public var retainedFor: [Subscription]
    }

    public mutating func subscribeReceived(_ packet: SubscribePacket, session: SessionHandle, maySubscribe: (String) -> Bool) -> SubscribePlan? {
        let limits = self.limits
        guard case .connected = phase else { return nil }
        let outcomes = SubscribeDecision.evaluate(packet, existing: state!.subscriptions, limits: limits, maySubscribe: maySubscribe)
        var changes: [SubscriptionChange] = []
        var added = 0
        var retainedFor: [Subscription] = []
        withState { state in
            for outcome in outcomes {
                guard case .granted(let subscription, let isNew) = outcome else { continue }
                if isNew { added += 1 }
                state.subscriptions[subscription.filter] = subscription
                changes.append(.add(session, subscription))
                if SubscribeDecision.sendsRetained(subscription, isNew: isNew) { retainedFor.append(subscription) }
            }
        }
        let suback = SubackPacket(
            packetID: packet.packetID, reasonCodes: outcomes.map(\.reasonCode),
            properties: problemProperties(Self.refusalSummary(packet, outcomes)))
        return SubscribePlan(outcomes: outcomes, changes: changes, added: added, suback: suback, retainedFor: retainedFor)
    }

    public struct UnsubscribePlan: Sendable {
        public var changes: [SubscriptionChange]
        public var unsuback: UnsubackPacket
    }

    public mutating func unsubscribeReceived(_ packet: UnsubscribePacket, session: SessionHandle) -> UnsubscribePlan? {
        guard case .connected = phase else { return nil }
        var changes: [SubscriptionChange] = []
        var codes: [ReasonCode] = []
        withState { state in
            for filter in packet.filters {
                if state.subscriptions.removeValue(forKey: filter) != nil {
                    changes.append(.remove(session, filter: filter))
                    codes.append(.success)
                } else {
                    codes.append(.noSubscriptionExisted)
                }
            }
        }
        return UnsubscribePlan(changes: changes, unsuback: UnsubackPacket(packetID: packet.packetID, reasonCodes: version == .v5 ? codes : []))
    }

    /// The subscriptions a changed policy no longer permits, removed from the session (the
    /// connection takes them out of the index; a 5.0 client is told with DISCONNECT 0x87).
    public mutating func revokeSubscriptions(mayKeep: (String) -> Bool) -> [Subscription] {
        withState { state in
            let revoked = state.subscriptions.values.filter { !mayKeep($0.filter) }
            for subscription in revoked { state.subscriptions[subscription.filter] = nil }
            return revoked
        } ?? []
    }

    /// "a/#: not authorized; x/+/+/+: topic filter invalid" for the SUBACK reason string.
    static func refusalSummary(_ packet: SubscribePacket, _ outcomes: [SubscribeOutcome]) -> String? {
        let refused = zip(packet.subscriptions, outcomes).filter { $0.1.reasonCode.isFailure }
        guard !refused.isEmpty else { return nil }
        return refused.map { "\($0.0.filter): \($0.1.reasonCode.name)" }.joined(separator: "; ")
    }
}
