import DequeModule
import MQTTCodec

/// Acknowledgements towards the client in the order their packets arrived (spec 4.6), each
/// released only once its store operations are committed; and QoS 2 sends (PUBLISH, PUBREL) to a
/// persistent session that must wait until their packet id or release is stored. Pure: the
/// connection tells it what was submitted and what committed, and sends what it returns.
public struct AcknowledgementQueue: Sendable {
    public struct Pending: Sendable {
        public enum State: Sendable { case waiting, ready, failed, withheld }
        public var packet: MQTTPacket
        public var state: State
    }

    /// A send that waits for a store commit.
    public enum GatedSend: Sendable {
        case publish(OutboundFlow.Outgoing)
        case pubrel(UInt16)
    }

    /// What to do with a released acknowledgement.
    public enum Release: Sendable {
        /// Send it as it is.
        case send(MQTTPacket)
        /// The store failed: send it with 0x97 (5.0). A QoS 2 failure also ends the inbound flow.
        case sendFailed(MQTTPacket)
        /// The store failed and a 3.1.1 client cannot be told: send nothing (it resends after
        /// reconnecting), but the slot is free.
        case withhold(MQTTPacket)
    }

    private var pending: Deque<Pending> = []
    /// Sequence number of `pending.first`.
    private var base = 0
    private var gated: Deque<(item: GatedSend, ready: Bool)> = []
    private var gatedBase = 0

    /// A client with this many acknowledgements waiting for the store is not read until they drain.
    public static let backlog = 1024

    public init() {}

    public var waiting: Int { pending.count }
    public var isEmpty: Bool { pending.isEmpty && gated.isEmpty }

    public enum Queued: Sendable, Equatable {
        /// Nothing is ahead of it and nothing to wait for: send now.
        case sendNow
        /// Behind acknowledgements still waiting: released later in order.
        case behind
        /// Waits for its own commit: report it with `committed(_:failed:version:)`.
        case waitsForCommit(sequence: Int)
    }

    /// Queues an acknowledgement; `waitsForStore` when its message's store operations were submitted.
    public mutating func enqueue(_ packet: MQTTPacket, waitsForStore: Bool) -> Queued {
        guard waitsForStore else {
            if pending.isEmpty { return .sendNow }
            pending.append(Pending(packet: packet, state: .ready))
            return .behind
        }
        let sequence = base + pending.count
        pending.append(Pending(packet: packet, state: .waiting))
        return .waitsForCommit(sequence: sequence)
    }

    /// The store committed (or failed) the operations of acknowledgement `sequence`: returns what
    /// can leave now, in order.
    public mutating func committed(_ sequence: Int, failed: Bool, version: ProtocolVersion) -> [Release] {
        let index = sequence - base
        guard index >= 0, index < pending.count else { return [] }
        pending[index].state = failed ? (version == .v5 ? .failed : .withheld) : .ready
        var released: [Release] = []
        while let first = pending.first, first.state != .waiting {
            pending.removeFirst()
            base += 1
            switch first.state {
            case .ready: released.append(.send(first.packet))
            case .failed: released.append(.sendFailed(first.packet))
            case .withheld: released.append(.withhold(first.packet))
            case .waiting: break
            }
        }
        return released
    }

    /// Queues a send that waits for its store commit; report it with `gatedCommitted(_:)`.
    public mutating func gate(_ item: GatedSend) -> Int {
        let sequence = gatedBase + gated.count
        gated.append((item, false))
        return sequence
    }

    /// Gated send `sequence` is committed: returns what can leave now, in order.
    public mutating func gatedCommitted(_ sequence: Int) -> [GatedSend] {
        let index = sequence - gatedBase
        guard index >= 0, index < gated.count else { return [] }
        gated[index].ready = true
        var released: [GatedSend] = []
        while let first = gated.first, first.ready {
            gated.removeFirst()
            gatedBase += 1
            released.append(first.item)
        }
        return released
    }
}
