import BastionCore
import MQTTCodec
import NIOCore

/// SUBSCRIBE and UNSUBSCRIBE (spec 3.8–3.11): the machine decides per filter; here every loop's
/// index is updated and a persistent session's list stored before the acknowledgement, then
/// retained messages are sent.
extension MQTTConnectionHandler {
    func subscribeReceived(_ packet: SubscribePacket) {
        guard let session else { return }
        refreshAuthorizerIfNeeded()
        let authorizer = self.authorizer
        guard let plan = machine.subscribeReceived(packet, session: session, maySubscribe: { authorizer.maySubscribe($0) }) else { return }
        broker.stats.subscriptions.add(plan.added, ordering: .relaxed)
        for (requested, outcome) in zip(packet.subscriptions, plan.outcomes) where outcome.reasonCode.isFailure {
            switch outcome.reasonCode {
            case .notAuthorized: auditDenied(.subscribe, requested.filter)
            case .quotaExceeded: auditLimit(.subscriptions, .refused, maximum: broker.limits.maximumSubscriptionsPerClient)
            default: break
            }
            logger.info("subscription refused", metadata: ["client_id": "\(clientID)", "filter": "\(requested.filter)", "reason": "\(outcome.reasonCode)"])
        }
        let stored = persistSubscriptions(changed: !plan.changes.isEmpty)
        let loopBound = NIOLoopBound(self, eventLoop: worker.eventLoop)
        broker.broadcast(plan.changes, from: worker.eventLoop).and(stored).whenComplete { _ in
            let handler = loopBound.value
            guard handler.machine.isConnected else { return }
            handler.run(.send(.suback(plan.suback)))
            for subscription in plan.retainedFor { handler.sendRetained(for: subscription) }
            handler.worker.flush()
        }
    }

    /// Stores a persistent session's subscription list; the acknowledgement waits for it so an
    /// acknowledged subscription survives a crash. Failures are logged, not fatal to the client.
    private func persistSubscriptions(changed: Bool) -> EventLoopFuture<Void> {
        let loop = worker.eventLoop
        guard changed, isPersistent, let state = machine.state else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        let logger = self.logger
        worker.persist([.saveSession(StoreMapping.record(state, owner: session?.owner ?? "", disconnectedAt: nil))], then: .callback { result in
            if case .failure(let error) = result { logger.error("subscriptions not stored: \(error)") }
            promise.succeed()
        })
        return promise.futureResult
    }

    /// Retained messages matching a new subscription, always with the retain flag (spec 3.3.1.3),
    /// through the router so a persistent session stores them like any other message.
    private func sendRetained(for subscription: Subscription) {
        let now = NIODeadline.now()
        for delivery in RetainedMessages.deliveries(for: subscription, in: broker.retained, now: now) {
            if let session { worker.deliver(delivery, to: session) } else { deliver(delivery) }
        }
    }

    func unsubscribeReceived(_ packet: UnsubscribePacket) {
        guard let session, let plan = machine.unsubscribeReceived(packet, session: session) else { return }
        broker.stats.subscriptions.subtract(plan.changes.count, ordering: .relaxed)
        let stored = persistSubscriptions(changed: !plan.changes.isEmpty)
        let loopBound = NIOLoopBound(self, eventLoop: worker.eventLoop)
        broker.broadcast(plan.changes, from: worker.eventLoop).and(stored).whenComplete { _ in
            let handler = loopBound.value
            guard handler.machine.isConnected else { return }
            handler.run(.send(.unsuback(plan.unsuback)))
            handler.worker.flush()
        }
    }
}
