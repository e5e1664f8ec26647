import BastionCore
import MQTTCodec
import NIOCore

/// SUBSCRIBE and UNSUBSCRIBE (spec 3.8–3.11): decide per filter, update every loop's index, then
/// acknowledge and send retained messages.
extension MQTTConnectionHandler {
    func subscribeReceived(_ packet: SubscribePacket) {
        guard state != nil, let session, let context else { return }
        refreshAuthorizerIfNeeded()
        let authorizer = self.authorizer
        let outcomes = SubscribeDecision.evaluate(packet, existing: state!.subscriptions, limits: broker.limits) {
            authorizer.maySubscribe($0)
        }
        var changes: [SubscriptionChange] = []
        for outcome in outcomes {
            if case .granted(let subscription, let isNew) = outcome {
                if isNew { broker.stats.subscriptions.add(1, ordering: .relaxed) }
                state!.subscriptions[subscription.filter] = subscription
                changes.append(.add(session, subscription))
            }
        }
        let stored = persistSubscriptions(state!, changed: !changes.isEmpty)
        for (requested, outcome) in zip(packet.subscriptions, outcomes) where outcome.reasonCode.isFailure {
            switch outcome.reasonCode {
            case .notAuthorized: auditDenied(.subscribe, requested.filter)
            case .quotaExceeded: auditLimit(.subscriptions, .refused, maximum: broker.limits.maximumSubscriptionsPerClient)
            default: break
            }
            logger.info("subscription refused", metadata: ["client_id": "\(clientID)", "filter": "\(requested.filter)", "reason": "\(outcome.reasonCode)"])
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        broker.broadcast(changes, from: context.eventLoop).and(stored).whenComplete { _ in
            let handler = loopBound.value
            guard handler.phase == .connected else { return }
            handler.send(.suback(SubackPacket(
                packetID: packet.packetID, reasonCodes: outcomes.map(\.reasonCode),
                properties: handler.problemProperties(Self.refusalSummary(packet, outcomes)))))
            for outcome in outcomes {
                guard case .granted(let subscription, let isNew) = outcome,
                      SubscribeDecision.sendsRetained(subscription, isNew: isNew) else { continue }
                handler.sendRetained(for: subscription)
            }
            handler.worker.flush()
        }
    }

    /// Stores a persistent session's subscription list; the acknowledgement waits for it so an
    /// acknowledged subscription survives a crash. Failures are logged, not fatal to the client.
    private func persistSubscriptions(_ state: SessionState, changed: Bool) -> EventLoopFuture<Void> {
        let loop = worker.eventLoop
        guard changed, isPersistent else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        let logger = self.logger
        worker.persist([.saveSession(StoreMapping.record(state, owner: session?.owner ?? "", disconnectedAt: nil))], then: .callback { result in
            if case .failure(let error) = result { logger.error("subscriptions not stored: \(error)") }
            promise.succeed()
        })
        return promise.futureResult
    }

    /// "a/#: not authorized; x/+/+/+: topic filter invalid" for the SUBACK reason string.
    static func refusalSummary(_ packet: SubscribePacket, _ outcomes: [SubscribeOutcome]) -> String? {
        let refused = zip(packet.subscriptions, outcomes).filter { $0.1.reasonCode.isFailure }
        guard !refused.isEmpty else { return nil }
        return refused.map { "\($0.0.filter): \($0.1.reasonCode.name)" }.joined(separator: "; ")
    }

    /// Retained messages matching a new subscription, always with the retain flag (spec 3.3.1.3).
    private func sendRetained(for subscription: Subscription) {
        let now = NIODeadline.now()
        for message in broker.retained.matching(subscription.topicFilter) where !message.isExpired(at: now) {
            let delivery = Delivery(
                message: message, qos: min(message.qos, subscription.options.qos), retain: true,
                subscriptionIdentifiers: subscription.identifier.map { [$0] } ?? [])
            // Through the router, so a persistent session stores it like any other message.
            if let session { worker.deliver(delivery, to: session) } else { deliver(delivery) }
        }
    }

    func unsubscribeReceived(_ packet: UnsubscribePacket) {
        guard state != nil, let session, let context else { return }
        var changes: [SubscriptionChange] = []
        var codes: [ReasonCode] = []
        for filter in packet.filters {
            if state!.subscriptions.removeValue(forKey: filter) != nil {
                broker.stats.subscriptions.subtract(1, ordering: .relaxed)
                changes.append(.remove(session, filter: filter))
                codes.append(.success)
            } else {
                codes.append(.noSubscriptionExisted)
            }
        }
        let stored = persistSubscriptions(state!, changed: !changes.isEmpty)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        broker.broadcast(changes, from: context.eventLoop).and(stored).whenComplete { _ in
            let handler = loopBound.value
            guard handler.phase == .connected else { return }
            handler.send(.unsuback(UnsubackPacket(packetID: packet.packetID, reasonCodes: handler.version == .v5 ? codes : [])))
            handler.worker.flush()
        }
    }
}
