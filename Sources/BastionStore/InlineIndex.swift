import BastionCore
import GRDB

/// Where each inline delivery is (`inline_deliveries` has no index: its rows are found by seq
/// from here, which costs a hash lookup instead of an index entry written and deleted per
/// message). Owned by the writer thread and changed as operations are applied; a rolled-back
/// transaction reloads it from the table. It may name rows that are gone (a startup moved them
/// into deliveries): every use falls back to the deliveries table.
final class InlineIndex {
    struct Entry: Sendable {
        var seq: Int64
        var clientID: String
    }

    /// At most one inline delivery per message.
    private var rows: [MessageID: Entry] = [:]
    /// For deleting a session's rows without a scan. A client's set may stay empty until its
    /// session is deleted.
    private var byClient: [String: Set<MessageID>] = [:]

    var count: Int { rows.count }

    init(_ entries: [(MessageID, Entry)]) {
        for (messageID, entry) in entries { add(messageID, entry) }
    }

    /// The table's rows, as the writer starts with them.
    static func entries(_ db: Database) throws -> [(MessageID, Entry)] {
        var entries: [(MessageID, Entry)] = []
        let cursor = try Row.fetchCursor(db, sql: "SELECT message_id, seq, client_id FROM inline_deliveries")
        while let row = try cursor.next() {
            entries.append((RowCoding.messageID(try row.decode(atIndex: 0)), Entry(seq: try row.decode(atIndex: 1), clientID: try row.decode(atIndex: 2))))
        }
        return entries
    }

    /// The message's inline delivery, if it is owed to `clientID`.
    func row(_ messageID: MessageID, _ clientID: String) -> Int64? {
        guard let row = rows[messageID], row.clientID == clientID else { return nil }
        return row.seq
    }

    func add(_ messageID: MessageID, _ row: Entry) {
        if let previous = rows.updateValue(row, forKey: messageID) { forget(messageID, previous.clientID) }
        byClient[row.clientID, default: []].insert(messageID)
    }

    func remove(_ messageID: MessageID) {
        guard let row = rows.removeValue(forKey: messageID) else { return }
        forget(messageID, row.clientID)
    }

    /// Removes and returns the seqs of the client's inline deliveries.
    func removeAll(_ clientID: String) -> [Int64] {
        guard let ids = byClient.removeValue(forKey: clientID) else { return [] }
        return ids.compactMap { rows.removeValue(forKey: $0)?.seq }
    }

    /// After a rollback: back to the committed rows.
    func reload(_ db: Database) throws {
        rows.removeAll()
        byClient.removeAll()
        for (messageID, entry) in try Self.entries(db) { add(messageID, entry) }
    }

    private func forget(_ messageID: MessageID, _ clientID: String) {
        byClient[clientID]?.remove(messageID)
    }
}
