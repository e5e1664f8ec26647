import BastionCore
import NIOCore
import Synchronization

/// When each QoS 1 message entered a bridge's queue: messages older than
/// `store_and_forward.max_age` are dropped instead of forwarded, and the oldest age is reported.
/// Only the bridge session's loop writes it (the lock is uncontended). Messages restored from the
/// store at start count from the restart: the store keeps no arrival time.
final class BridgeQueueAges: Sendable {
    let maximumAge: TimeAmount?
    private let entered = Mutex<[MessageID: NIODeadline]>([:])

    init(maximumAgeSeconds: Int?) {
        maximumAge = maximumAgeSeconds.map { .seconds(Int64($0)) }
    }

    /// First sight of a message (a redelivery keeps its first time).
    func enter(_ id: MessageID, at now: NIODeadline) {
        entered.withLock { if $0[id] == nil { $0[id] = now } }
    }

    /// Whether the message has waited longer than `max_age`.
    func isTooOld(_ id: MessageID, at now: NIODeadline) -> Bool {
        guard let maximumAge else { return false }
        return entered.withLock { $0[id].map { now - $0 > maximumAge } ?? false }
    }

    func forget(_ id: MessageID) {
        _ = entered.withLock { $0.removeValue(forKey: id) }
    }

    func age(of id: MessageID, at now: NIODeadline) -> TimeAmount? {
        entered.withLock { $0[id].map { now - $0 } }
    }
}
