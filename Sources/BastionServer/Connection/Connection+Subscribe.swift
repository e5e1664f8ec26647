import BastionCore
import MQTTCodec
import NIOCore

/// SUBSCRIBE and UNSUBSCRIBE (spec 3.8–3.11): decide per filter, update every loop's index, then
/// acknowledge and send retained messages.
extension MQTTConnectionHandler {
    func subscribeReceived(_ packet: SubscribePacket) {
        guard var state, let session, let context else { return }
        refreshAuthorizerIfNeeded()
        let authorizer = self.authorizer
        let outcomes = SubscribeDecision.evaluate(packet, existing: state.subscriptions, limits: broker.limits) {
            authorizer.maySubscribe($0)
        }
        var changes: [SubscriptionChange] = []
        for outcome in outcomes {
            if case .granted(let subscription, _) = outcome {
                state.subscriptions[subscription.filter] = subscription
                changes.append(.add(session, subscription))
            }
        }
        self.state = state
        for (requested, outcome) in zip(packet.subscriptions, outcomes) where outcome.reasonCode.isFailure {
            logger.info("subscription refused", metadata: ["client_id": "\(clientID)", "filter": "\(requested.filter)", "reason": "\(outcome.reasonCode)"])
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        broker.broadcast(changes, from: context.eventLoop).whenComplete { _ in
            let handler = loopBound.value
            guard handler.phase == .connected else { return }
            handler.send(.suback(SubackPacket(packetID: packet.packetID, reasonCodes: outcomes.map(\.reasonCode))))
            for outcome in outcomes {
                guard case .granted(let subscription, let isNew) = outcome,
                      SubscribeDecision.sendsRetained(subscription, isNew: isNew) else { continue }
                handler.sendRetained(for: subscription)
            }
            handler.worker.flush()
        }
    }

    /// Retained messages matching a new subscription, always with the retain flag (spec 3.3.1.3).
    private func sendRetained(for subscription: Subscription) {
        let now = NIODeadline.now()
        for message in broker.retained.matching(subscription.topicFilter) where !message.isExpired(at: now) {
            let delivery = Delivery(
                message: message, qos: min(message.qos, subscription.options.qos), retain: true,
                subscriptionIdentifiers: subscription.identifier.map { [$0] } ?? [])
            deliver(delivery)
        }
    }

    func unsubscribeReceived(_ packet: UnsubscribePacket) {
        guard var state, let session, let context else { return }
        var changes: [SubscriptionChange] = []
        var codes: [ReasonCode] = []
        for filter in packet.filters {
            if state.subscriptions.removeValue(forKey: filter) != nil {
                changes.append(.remove(session, filter: filter))
                codes.append(.success)
            } else {
                codes.append(.noSubscriptionExisted)
            }
        }
        self.state = state
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        broker.broadcast(changes, from: context.eventLoop).whenComplete { _ in
            let handler = loopBound.value
            guard handler.phase == .connected else { return }
            handler.send(.unsuback(UnsubackPacket(packetID: packet.packetID, reasonCodes: handler.version == .v5 ? codes : [])))
            handler.worker.flush()
        }
    }
}
