import BastionCore
import NIOCore

/// Applies what the durable store held at startup, before any listener binds: retained messages, persistent
/// sessions with their subscriptions (into every loop's index), queued and in-flight messages,
/// pending wills, and where new message ids start.
enum StateRestore {
    struct Summary {
        var sessions = 0
        var messages = 0
        var retained = 0
    }

    static func restore(_ broker: Broker, from loaded: StoredBrokerState, loadedAt wallNow: WallClock) async throws -> Summary {
        let now = NIODeadline.now()
        broker.messageIDBase.store(loaded.nextMessageID, ordering: .relaxed)
        let messages = loaded.messages.mapValues { StoreMapping.message($0, now: now, wallNow: wallNow) }
        for stored in loaded.retained {
            broker.retained.apply(StoreMapping.message(stored, now: now, wallNow: wallNow))
        }
        var changes: [SubscriptionChange] = []
        var summary = Summary(sessions: loaded.sessions.count, messages: messages.count, retained: loaded.retained.count)
        for stored in loaded.sessions {
            broker.stats.subscriptions.add(stored.record.subscriptions.count, ordering: .relaxed)
            let state = StoreMapping.sessionState(stored, messages: messages, limits: broker.limits)
            // A session whose client was connected when the broker stopped counts as disconnected now.
            let disconnectedAt = StoreMapping.deadline(stored.record.disconnectedAt, now: now, wallNow: wallNow) ?? now
            let handle = broker.registry.restore(state, owner: stored.record.owner, disconnectedAt: disconnectedAt)
            if let will = stored.pendingWill {
                let publishAt = StoreMapping.deadline(stored.willPublishAt, now: now, wallNow: wallNow) ?? now
                _ = handle.withOfflineState {
                    $0.pendingWill = PendingWill(message: StoreMapping.message(will, now: now, wallNow: wallNow), publishAt: publishAt)
                }
            }
            changes += state.subscriptions.values.map { .add(handle, $0) }
        }
        if !changes.isEmpty {
            let loop = broker.group.next()
            try await loop.flatSubmit { broker.broadcast(changes, from: loop) }.get()
        }
        // Sessions that ended while the broker was down: their wills are due (after the
        // subscriptions are back, so that persistent sessions receive them).
        if !loaded.endedSessionWills.isEmpty {
            let loop = broker.group.next()
            let wills = loaded.endedSessionWills.map { StoreMapping.message($0, now: now, wallNow: wallNow) }
            try await loop.submit {
                for will in wills { broker.publish(will, on: loop) }
            }.get()
            broker.logger.notice("published the wills of sessions that expired while the broker was down", metadata: ["wills": "\(wills.count)"])
        }
        summary.messages = messages.count
        return summary
    }
}
