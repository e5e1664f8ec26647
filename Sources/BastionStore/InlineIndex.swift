import BastionCore
import GRDB
import Synchronization

/// Where each inline delivery is, and its packet id and release flag: `inline_deliveries` has no
/// index, so its rows are found by seq from here (a hash lookup instead of an index entry written
/// and deleted per message), and packet-id and release updates are decided here and written once
/// at the end of the transaction, unless the row is deleted first. Owned by the writer thread and
/// changed as operations are applied; it always matches the table when a transaction starts: a
/// rolled-back transaction or a startup that moved the rows elsewhere (`InlineTableEpoch`) makes
/// it reload first.
final class InlineIndex {
    struct Entry: Sendable {
        var seq: Int64
        var clientID: String
        var packetID: UInt16?
        var released: Bool
    }

    /// At most one inline delivery per message.
    private var rows: [MessageID: Entry] = [:]
    /// For deleting a session's rows without a scan. A client's set may stay empty until its
    /// session is deleted.
    private var byClient: [String: Set<MessageID>] = [:]
    /// The epoch the rows were read at.
    private var epoch: Int
    /// A transaction that changed the rows was rolled back.
    private var stale = false

    init(_ entries: [(MessageID, Entry)], epoch: Int) {
        self.epoch = epoch
        for (messageID, entry) in entries { add(messageID, entry) }
    }

    /// The table's rows.
    static func entries(_ db: Database) throws -> [(MessageID, Entry)] {
        var entries: [(MessageID, Entry)] = []
        let cursor = try Row.fetchCursor(
            db, sql: "SELECT message_id, seq, client_id, packet_id, released FROM inline_deliveries")
        while let row = try cursor.next() {
            let packetID: Int64? = try row.decode(atIndex: 3)
            entries.append((
                RowCoding.messageID(try row.decode(atIndex: 0)),
                Entry(
                    seq: try row.decode(atIndex: 1), clientID: try row.decode(atIndex: 2),
                    packetID: packetID.flatMap { UInt16(exactly: $0) }, released: try row.decode(atIndex: 4))
            ))
        }
        return entries
    }

    /// The message's inline delivery.
    func entry(_ messageID: MessageID) -> Entry? { rows[messageID] }

    /// The message's inline delivery, if it is owed to `clientID`.
    func entry(_ messageID: MessageID, _ clientID: String) -> Entry? {
        guard let entry = rows[messageID], entry.clientID == clientID else { return nil }
        return entry
    }

    func add(_ messageID: MessageID, _ entry: Entry) {
        if let previous = rows.updateValue(entry, forKey: messageID) { forget(messageID, previous.clientID) }
        byClient[entry.clientID, default: []].insert(messageID)
    }

    func update(_ messageID: MessageID, packetID: UInt16? = nil, released: Bool? = nil) {
        if let packetID { rows[messageID]?.packetID = packetID }
        if let released { rows[messageID]?.released = released }
    }

    func remove(_ messageID: MessageID) {
        guard let entry = rows.removeValue(forKey: messageID) else { return }
        forget(messageID, entry.clientID)
    }

    /// Removes and returns the seqs of the client's inline deliveries.
    func removeAll(_ clientID: String) -> [Int64] {
        guard let ids = byClient.removeValue(forKey: clientID) else { return [] }
        return ids.compactMap { rows.removeValue(forKey: $0)?.seq }
    }

    /// After a rollback: the rows no longer match the table until `reloadIfNeeded`.
    func markStale() { stale = true }

    /// Back to the table's rows if a rollback left them stale or the table was rewritten outside
    /// the writer since they were read. Call before each transaction.
    func reloadIfNeeded(_ db: Database, _ current: InlineTableEpoch) throws {
        let now = current.value
        guard stale || now != epoch else { return }
        rows.removeAll()
        byClient.removeAll()
        for (messageID, entry) in try Self.entries(db) { add(messageID, entry) }
        epoch = now
        stale = false
    }

    private func forget(_ messageID: MessageID, _ clientID: String) {
        byClient[clientID]?.remove(messageID)
    }
}

/// Counts rewrites of `inline_deliveries` outside the writer (the startup load moves its rows
/// into deliveries), so that the writer's `InlineIndex` reloads before its next transaction.
final class InlineTableEpoch: Sendable {
    private let counter = Atomic<Int>(0)

    var value: Int { counter.load(ordering: .acquiring) }

    /// Call inside the database access that rewrote the table.
    func advance() { counter.add(1, ordering: .releasing) }
}
