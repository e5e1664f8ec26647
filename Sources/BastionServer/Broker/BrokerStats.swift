import BastionCore
import Synchronization

/// Broker-wide counters for logs, `$SYS` and metrics. Relaxed atomics: totals, not ordering.
final class BrokerStats: Sendable {
    let clientsConnected = Atomic<Int>(0)
    let clientsMaximum = Atomic<Int>(0)
    let sessionsExpired = Atomic<Int>(0)
    let connectionsTotal = Atomic<Int>(0)
    /// Subscriptions across all sessions (maintained by SUBSCRIBE/UNSUBSCRIBE and session end).
    let subscriptions = Atomic<Int>(0)
    let storeFailing = Atomic<Bool>(false)
    func clientConnected() {
        let now = clientsConnected.add(1, ordering: .relaxed).newValue
        var maximum = clientsMaximum.load(ordering: .relaxed)
        while now > maximum {
            let (exchanged, original) = clientsMaximum.compareExchange(expected: maximum, desired: now, ordering: .relaxed)
            if exchanged { break }
            maximum = original
        }
    }

}

/// Per-message counters, one set per event loop: each is written only by its own loop, so the
/// publish path never bounces a shared cache line between cores. Snapshots add them up.
final class TrafficCounters: Sendable {
    let bytesReceived = Atomic<Int>(0)
    let bytesSent = Atomic<Int>(0)
    let publishReceived0 = Atomic<Int>(0)
    let publishReceived1 = Atomic<Int>(0)
    let publishReceived2 = Atomic<Int>(0)
    let publishSent0 = Atomic<Int>(0)
    let publishSent1 = Atomic<Int>(0)
    let publishSent2 = Atomic<Int>(0)
    let droppedQueueFull = Atomic<Int>(0)
    let droppedSlowConsumer = Atomic<Int>(0)
    let droppedExpired = Atomic<Int>(0)
    let droppedTooLarge = Atomic<Int>(0)
    let droppedOffline = Atomic<Int>(0)
    let queuedOffline = Atomic<Int>(0)
    // Keeps the next loop's counters off this cache line.
    private let padding = (0, 0, 0, 0, 0, 0, 0, 0)

    func received(qos: UInt8) {
        switch qos {
        case 0: publishReceived0.add(1, ordering: .relaxed)
        case 1: publishReceived1.add(1, ordering: .relaxed)
        default: publishReceived2.add(1, ordering: .relaxed)
        }
    }

    func sent(qos: UInt8, bytes: Int) {
        bytesSent.add(bytes, ordering: .relaxed)
        switch qos {
        case 0: publishSent0.add(1, ordering: .relaxed)
        case 1: publishSent1.add(1, ordering: .relaxed)
        default: publishSent2.add(1, ordering: .relaxed)
        }
    }

    func drop(_ reason: DropReason, _ n: Int = 1) {
        switch reason {
        case .queueFull: droppedQueueFull.add(n, ordering: .relaxed)
        case .slowConsumer: droppedSlowConsumer.add(n, ordering: .relaxed)
        case .expired: droppedExpired.add(n, ordering: .relaxed)
        case .tooLarge: droppedTooLarge.add(n, ordering: .relaxed)
        case .offline: droppedOffline.add(n, ordering: .relaxed)
        }
    }

    func dropped(_ reason: DropReason) -> Int {
        switch reason {
        case .queueFull: droppedQueueFull.load(ordering: .relaxed)
        case .slowConsumer: droppedSlowConsumer.load(ordering: .relaxed)
        case .expired: droppedExpired.load(ordering: .relaxed)
        case .tooLarge: droppedTooLarge.load(ordering: .relaxed)
        case .offline: droppedOffline.load(ordering: .relaxed)
        }
    }
}
