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
    let connectionsTotal = Atomic<Int>(0)

    func dropped(_ n: Int = 1) { messagesDropped.add(n, ordering: .relaxed) }
    func queuedOffline() { messagesQueuedOffline.add(1, ordering: .relaxed) }
}
