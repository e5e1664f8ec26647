import DequeModule
import MQTTCodec

/// QoS 1 messages the broker handed to the bridge and the remote has not acknowledged yet, in
/// the order they arrived. Each keeps the packet id the local session gave it: the local PUBACK,
/// which lets the broker forget the stored copy, goes only after the remote's PUBACK. After a cut
/// the unacknowledged ones go back to the front, in their original order, and are sent again.
struct ForwardQueue {
    struct Entry {
        /// The local session's packet id, acknowledged once the remote has the message.
        var localPacketID: UInt16
        /// The PUBLISH for the remote (mapped topic; packet id set when sent).
        var publish: PublishPacket
        /// Topic and payload bytes, for the queue's size and the rate limit.
        var size: Int
        var sequence: UInt64
    }

    private(set) var unsent: Deque<Entry> = []
    private var awaiting: [UInt16: Entry] = [:]
    private var lastPacketID: UInt16 = 0
    private var nextSequence: UInt64 = 0
    private(set) var bytes = 0

    var count: Int { unsent.count + awaiting.count }
    var inflight: Int { awaiting.count }
    var isEmpty: Bool { unsent.isEmpty && awaiting.isEmpty }

    mutating func append(localPacketID: UInt16, publish: PublishPacket, size: Int) {
        unsent.append(Entry(localPacketID: localPacketID, publish: publish, size: size, sequence: nextSequence))
        nextSequence &+= 1
        bytes += size
    }

    /// The next message to send, if fewer than `window` are in flight.
    func peek(window: Int) -> Entry? {
        awaiting.count < window ? unsent.first : nil
    }

    /// Marks the front message sent under a fresh remote packet id and returns its PUBLISH.
    mutating func send() -> PublishPacket? {
        guard !unsent.isEmpty, var entry = unsent.first, let id = nextPacketID() else { return nil }
        unsent.removeFirst()
        entry.publish.packetID = id
        awaiting[id] = entry
        return entry.publish
    }

    /// Drops the front message (too large for the remote, say); returns its local packet id.
    mutating func discardFront() -> UInt16? {
        guard let entry = unsent.popFirst() else { return nil }
        bytes -= entry.size
        return entry.localPacketID
    }

    /// The remote acknowledged `remotePacketID`: returns the local packet id to acknowledge.
    mutating func acknowledged(_ remotePacketID: UInt16) -> UInt16? {
        guard let entry = awaiting.removeValue(forKey: remotePacketID) else { return nil }
        bytes -= entry.size
        return entry.localPacketID
    }

    /// The remote connection ended: what it did not acknowledge is sent again on the next one.
    mutating func linkLost() {
        guard !awaiting.isEmpty else { return }
        for entry in awaiting.values.sorted(by: { $0.sequence > $1.sequence }) {
            var resend = entry
            resend.publish.packetID = 0
            unsent.prepend(resend)
        }
        awaiting.removeAll()
    }

    /// The local connection ended: the broker's session still holds every message and will
    /// deliver them again, so the bridge forgets its copies.
    mutating func removeAll() {
        unsent.removeAll()
        awaiting.removeAll()
        bytes = 0
    }

    private mutating func nextPacketID() -> UInt16? {
        PacketIDs.next(after: &lastPacketID, inUse: awaiting)
    }
}

/// Packet identifiers for one direction of a connection: the next one after the last, skipping
/// those still in use (spec 2.2.1); nil when all 65,535 are taken.
enum PacketIDs {
    static func next<Value>(after last: inout UInt16, inUse: [UInt16: Value]) -> UInt16? {
        guard inUse.count < 65535 else { return nil }
        repeat {
            last = last == 65535 ? 1 : last + 1
        } while inUse[last] != nil
        return last
    }
}
