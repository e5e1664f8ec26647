import Synchronization

/// Broker-wide counters for logs, `$SYS` and metrics. Relaxed atomics: totals, not ordering.
final class BrokerStats: Sendable {
    let messagesReceived = Atomic<Int>(0)
    let messagesSent = Atomic<Int>(0)
    let bytesReceived = Atomic<Int>(0)
    let bytesSent = Atomic<Int>(0)
    let messagesDropped = Atomic<Int>(0)
    let messagesQueuedOffline = Atomic<Int>(0)
    let clientsConnected = Atomic<Int>(0)
    let clientsMaximum = Atomic<Int>(0)
    let sessionsExpired = Atomic<Int>(0)
    let connectionsTotal = Atomic<Int>(0)
    /// Subscriptions across all sessions (maintained by SUBSCRIBE/UNSUBSCRIBE and session end).
    let subscriptions = Atomic<Int>(0)
    let storeFailing = Atomic<Bool>(false)
    let publishReceived0 = Atomic<Int>(0)
    let publishReceived1 = Atomic<Int>(0)
    let publishReceived2 = Atomic<Int>(0)
    let publishSent0 = Atomic<Int>(0)
    let publishSent1 = Atomic<Int>(0)
    let publishSent2 = Atomic<Int>(0)

    func received(qos: UInt8) {
        switch qos {
        case 0: publishReceived0.add(1, ordering: .relaxed)
        case 1: publishReceived1.add(1, ordering: .relaxed)
        default: publishReceived2.add(1, ordering: .relaxed)
        }
    }

    func sent(qos: UInt8) {
        switch qos {
        case 0: publishSent0.add(1, ordering: .relaxed)
        case 1: publishSent1.add(1, ordering: .relaxed)
        default: publishSent2.add(1, ordering: .relaxed)
        }
    }

    func clientConnected() {
        let now = clientsConnected.add(1, ordering: .relaxed).newValue
        var maximum = clientsMaximum.load(ordering: .relaxed)
        while now > maximum {
            let (exchanged, original) = clientsMaximum.compareExchange(expected: maximum, desired: now, ordering: .relaxed)
            if exchanged { break }
            maximum = original
        }
    }

    func dropped(_ n: Int = 1) { messagesDropped.add(n, ordering: .relaxed) }
    func queuedOffline() { messagesQueuedOffline.add(1, ordering: .relaxed) }
}
