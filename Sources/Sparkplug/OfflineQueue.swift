/// Keys in the order they went offline, oldest first, for evicting offline records when a cap is
/// reached. A record coming back online is not searched for: its entry goes stale (its ticket no
/// longer matches the record's) and is skipped when reached. Stale entries are dropped in one pass
/// once they outnumber what the cap allows, so every operation is amortised O(1) and the queue
/// stays within a constant factor of the cap.
struct OfflineQueue<Key: Hashable & Sendable>: Sendable {
    private var entries: [(key: Key, ticket: UInt64)] = []
    private var head = 0
    private var nextTicket: UInt64 = 0
    private let compactionThreshold: Int

    init(capacity: Int) {
        compactionThreshold = 2 * max(capacity, 0) + 64
    }

    // The owner's table is passed in, rather than captured by `isCurrent`, so that the queue and
    // the table (two properties of one struct) can be accessed at once without copying the table.

    /// Records that `key` went offline now; the record keeps the ticket to prove its entry current.
    mutating func push<Table>(_ key: Key, table: Table, isCurrent: (Table, Key, UInt64) -> Bool) -> UInt64 {
        // Compacted before appending: the new entry is current although its record does not hold
        // the ticket yet.
        if entries.count - head >= compactionThreshold {
            entries = entries[head...].filter { isCurrent(table, $0.key, $0.ticket) }
            head = 0
        }
        let ticket = nextTicket
        nextTicket += 1
        entries.append((key, ticket))
        return ticket
    }

    /// The key that has been offline longest and is still offline, removed from the queue.
    mutating func popOldest<Table>(table: Table, isCurrent: (Table, Key, UInt64) -> Bool) -> Key? {
        while head < entries.count {
            let entry = entries[head]
            head += 1
            if head > 64, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
            if isCurrent(table, entry.key, entry.ticket) { return entry.key }
        }
        return nil
    }

    var storedEntries: Int { entries.count - head }
}
