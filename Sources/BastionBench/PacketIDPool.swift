/// Packet identifiers for a publisher's bounded in-flight window (QoS 1 and 2). Identifiers
/// 1...capacity are reused as acknowledgements free them, so the window never grows past the
/// capacity and no identifier is in use twice.
struct PacketIDPool: Sendable {
    private var free: [UInt16]
    private var inUse: [Bool]

    /// `capacity` is clamped to 1...65535 (packet identifier 0 is reserved).
    init(capacity: Int) {
        let capacity = min(max(capacity, 1), Int(UInt16.max))
        // Stored so the lowest identifier is handed out first.
        free = (1...capacity).reversed().map { UInt16($0) }
        inUse = Array(repeating: false, count: capacity + 1)
    }

    var capacity: Int { inUse.count - 1 }
    var inFlight: Int { capacity - free.count }
    var available: Int { free.count }

    mutating func acquire() -> UInt16? {
        guard let id = free.popLast() else { return nil }
        inUse[Int(id)] = true
        return id
    }

    /// Returns false for an identifier that is not in flight (an unexpected or duplicate ack).
    @discardableResult
    mutating func release(_ id: UInt16) -> Bool {
        guard Int(id) < inUse.count, inUse[Int(id)] else { return false }
        inUse[Int(id)] = false
        free.append(id)
        return true
    }

    func isInFlight(_ id: UInt16) -> Bool {
        Int(id) < inUse.count && inUse[Int(id)]
    }
}
