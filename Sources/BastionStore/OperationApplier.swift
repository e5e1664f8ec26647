import BastionCore
import Foundation
import GRDB
import NIOCore

/// Applies `StoreOperation`s inside the writer's open transaction, through prepared statements
/// cached by the connection. Bodies that may have lost their last reference are remembered and
/// checked once per batch (`collectGarbage`), each by two index lookups: no table scans.
///
/// A message with an inline delivery (see `DeliveryCoalescing`) is the first in queue order of its
/// session's deliveries of it: operations on it try the inline row first, then `deliveries`.
struct OperationApplier {
    private let db: Database
    /// The writer's position, advanced by this transaction.
    private(set) var position: WriterPosition
    /// Changed as operations are applied (the writer reloads it after a rollback).
    private let inline: InlineIndex
    private var candidates: Set<MessageID> = []
    /// Bodies already written in this batch: a fan-out repeats `putMessage` once per session.
    private var written: Set<MessageID> = []
    private var statements = PerMessageStatements()
    /// Encoding space for blobs, reused.
    private var scratch = ByteBuffer()

    init(db: Database, position: WriterPosition, inline: InlineIndex) {
        self.db = db
        self.position = position
        self.inline = inline
    }

    /// Inline rows whose packet id or release flag changed in `inline`, written by
    /// `writeInlineUpdates` (skipped for rows deleted first).
    private var inlineUpdates: Set<MessageID> = []

    /// Runs `statement` for the first delivery of the message to the client in the deliveries
    /// table (?1 the new value if any, ?2 client id, ?3 message id); true if it changed one.
    private func updateTable(_ statement: BoundStatement, _ clientID: String, _ messageID: MessageID, value: Int64?) throws -> Bool {
        if let value { statement.bind(1, value) }
        statement.bind(2, clientID)
        statement.bind(3, RowCoding.messageID(messageID))
        try statement.run()
        return statement.changes > 0
    }

    /// Updates the first delivery of the message to the client that the preferred condition
    /// selects, else the first one. An inline delivery is the first in queue order: it is checked
    /// (`preferringInline`) and changed in memory, the deliveries table by the statements.
    private mutating func updateFirst(
        _ clientID: String, _ messageID: MessageID, value: Int64?, preferringInline: (InlineIndex.Entry) -> Bool,
        preferred: BoundStatement, fallback: BoundStatement, inlineChange: (packetID: UInt16?, released: Bool?)
    ) throws {
        let entry = inline.entry(messageID, clientID)
        if let entry, preferringInline(entry) {
            updateInline(messageID, packetID: inlineChange.packetID, released: inlineChange.released)
        } else if try updateTable(preferred, clientID, messageID, value: value) {
            return
        } else if entry != nil {
            updateInline(messageID, packetID: inlineChange.packetID, released: inlineChange.released)
        } else {
            _ = try updateTable(fallback, clientID, messageID, value: value)
        }
    }

    /// Writes the packet ids and release flags changed in memory, one update per row still there.
    mutating func writeInlineUpdates() throws {
        guard !inlineUpdates.isEmpty else { return }
        let statement = try statements.inlineUpdate(db)
        for id in inlineUpdates {
            guard let entry = inline.entry(id) else { continue }
            statement.bind(1, entry.packetID.map(Int64.init))
            statement.bind(2, entry.released)
            statement.bind(3, entry.seq)
            try statement.run()
        }
        inlineUpdates.removeAll(keepingCapacity: true)
    }

    private mutating func updateInline(_ messageID: MessageID, packetID: UInt16? = nil, released: Bool? = nil) {
        inline.update(messageID, packetID: packetID, released: released)
        inlineUpdates.insert(messageID)
    }

    private var highestMessageID: MessageID {
        get { position.highestMessageID }
        set { position.highestMessageID = newValue }
    }

    mutating func apply(_ operation: StoreOperation) throws {
        switch operation {
        case .saveSession(let record):
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO sessions (client_id, expiry_interval, disconnected_at, subscriptions, owner)
                VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [
                    record.clientID, Int64(record.expiryInterval), record.disconnectedAt,
                    RowCoding.subscriptions(record.subscriptions), record.owner,
                ])

        case .deleteSession(let clientID):
            // Its inline rows leave `inline`; `writeInlineUpdates` skips them.
            let ids = try Int64.fetchAll(
                db.cachedStatement(sql: "DELETE FROM deliveries WHERE client_id = ? RETURNING message_id"),
                arguments: [clientID])
            for id in ids { candidates.insert(RowCoding.messageID(id)) }
            let inlineDelete = try statements.inlineDequeue(db)
            for seq in inline.removeAll(clientID) {
                inlineDelete.bind(1, seq)
                try inlineDelete.run()
            }
            try db.cachedStatement(sql: "DELETE FROM inbound_qos2 WHERE client_id = ?").execute(arguments: [clientID])
            try db.cachedStatement(sql: "DELETE FROM wills WHERE client_id = ?").execute(arguments: [clientID])
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE client_id = ?").execute(arguments: [clientID])

        case .putMessage(let message, _):
            // Not a collection candidate: the enqueue that refers to it may come in a later submit.
            try put(message)

        case .enqueue(let clientID, let delivery):
            try enqueue(clientID, delivery)

        case .assignPacketID(let clientID, let messageID, let packetID):
            // One client may hold two deliveries of a message (shared and non-shared
            // subscription): the first one not yet sent gets the id (else the first one). The
            // table statements walk `deliveries_by_client` in seq order: no sorting.
            try updateFirst(
                clientID, messageID, value: Int64(packetID), preferringInline: { $0.packetID == nil },
                preferred: statements.assignUnsent(db), fallback: statements.assignAny(db),
                inlineChange: (packetID, nil))

        case .markReleased(let clientID, let messageID):
            // The first sent and not yet released delivery (else the first one).
            try updateFirst(
                clientID, messageID, value: nil, preferringInline: { $0.packetID != nil && !$0.released },
                preferred: statements.releaseSent(db), fallback: statements.releaseAny(db),
                inlineChange: (nil, true))

        case .dequeue(let clientID, let messageID):
            if let entry = inline.entry(messageID, clientID) {
                // The first delivery in queue order: its pending update, if any, is moot.
                inline.remove(messageID)
                inlineUpdates.remove(messageID)
                let statement = try statements.inlineDequeue(db)
                statement.bind(1, entry.seq)
                try statement.run()
                return
            }
            let statement = try statements.dequeue(db)
            statement.bind(1, clientID)
            statement.bind(2, RowCoding.messageID(messageID))
            try statement.run()
            candidates.insert(messageID)

        case .inboundQoS2(let clientID, let packetID, let pending):
            let sql = pending
                ? "INSERT OR IGNORE INTO inbound_qos2 (client_id, packet_id) VALUES (?, ?)"
                : "DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?"
            try db.cachedStatement(sql: sql).execute(arguments: [clientID, Int64(packetID)])

        case .setRetained(let message):
            try put(message)
            if let previous = try retainedMessageID(topic: message.topic), previous != message.id {
                candidates.insert(previous)
            }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO retained (topic, message_id) VALUES (?, ?)")
                .execute(arguments: [message.topic, RowCoding.messageID(message.id)])

        case .clearRetained(let topic):
            if let previous = try retainedMessageID(topic: topic) {
                candidates.insert(previous)
                try db.cachedStatement(sql: "DELETE FROM retained WHERE topic = ?").execute(arguments: [topic])
            }

        case .setPendingWill(let clientID, let will, let publishAt):
            guard let will else {
                try db.cachedStatement(sql: "DELETE FROM wills WHERE client_id = ?").execute(arguments: [clientID])
                return
            }
            highestMessageID = max(highestMessageID, will.id)
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO wills
                    (client_id, publish_at, message_id, topic, payload, qos, retain, properties, publisher, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    clientID, publishAt, RowCoding.messageID(will.id), will.topic, RowCoding.blob(will.payload),
                    Int64(will.qos.rawValue), will.retain, RowCoding.properties(will.properties), will.publisherClientID,
                    will.expiresAt,
                ])
        }
    }

    /// Deletes the candidate bodies that no delivery and no retained entry refers to.
    mutating func collectGarbage() throws -> Int {
        guard !candidates.isEmpty else { return 0 }
        let statement = try statements.collect(db)
        var collected = 0
        for id in candidates {
            statement.bind(1, RowCoding.messageID(id))
            try statement.run()
            collected += statement.changes
        }
        candidates.removeAll(keepingCapacity: true)
        return collected
    }

    private mutating func put(_ message: StoredMessage) throws {
        highestMessageID = max(highestMessageID, message.id)
        guard written.insert(message.id).inserted else { return }
        let statement = try statements.putMessage(db)
        statement.bind(1, RowCoding.messageID(message.id))
        bindBody(statement, message, from: 2)
        try statement.run()
    }

    /// topic, payload, qos, retain, properties, publisher, expires_at from parameter `first` on.
    private mutating func bindBody(_ statement: BoundStatement, _ message: StoredMessage, from first: Int32) {
        statement.bind(first, message.topic)
        statement.bind(first + 1, bytes: message.payload)
        statement.bind(first + 2, Int64(message.qos.rawValue))
        statement.bind(first + 3, message.retain)
        scratch.clear()
        message.properties.writeSection(to: &scratch)
        statement.bind(first + 4, bytes: scratch)
        statement.bind(first + 5, message.publisherClientID)
        statement.bind(first + 6, message.expiresAt)
    }

    /// An `enqueue` written with its delivery's final packet id and release flag.
    mutating func enqueue(_ operation: StoreOperation, packetID: UInt16?, released: Bool) throws {
        guard case .enqueue(let clientID, var delivery) = operation else { return }
        delivery.packetID = packetID
        delivery.released = released
        try enqueue(clientID, delivery)
    }

    /// An `enqueue` of a new message, written with its body as one inline row.
    mutating func enqueueInline(
        _ operation: StoreOperation, packetID: UInt16?, released: Bool, bodies: [MessageID: StoredMessage]
    ) throws {
        guard case .enqueue(let clientID, var delivery) = operation, let message = bodies[delivery.messageID] else { return }
        delivery.packetID = packetID
        delivery.released = released
        highestMessageID = max(highestMessageID, message.id)
        let statement = try statements.inlineEnqueue(db)
        let seq = bindDelivery(statement, clientID, delivery)
        bindBody(statement, message, from: 10)
        try statement.run()
        inline.add(message.id, InlineIndex.Entry(seq: seq, clientID: clientID, packetID: packetID, released: released))
    }

    private mutating func enqueue(_ clientID: String, _ delivery: StoredDelivery) throws {
        let statement = try statements.enqueue(db)
        bindDelivery(statement, clientID, delivery)
        try statement.run()
    }

    /// seq, client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released.
    /// Returns the seq.
    @discardableResult
    private mutating func bindDelivery(_ statement: BoundStatement, _ clientID: String, _ delivery: StoredDelivery) -> Int64 {
        let seq = position.nextSeq
        statement.bind(1, seq)
        position.nextSeq += 1
        statement.bind(2, clientID)
        statement.bind(3, RowCoding.messageID(delivery.messageID))
        statement.bind(4, Int64(delivery.qos.rawValue))
        statement.bind(5, delivery.retain)
        if delivery.subscriptionIdentifiers.isEmpty {
            statement.bind(6, bytes: nil)
        } else {
            scratch.clear()
            for id in delivery.subscriptionIdentifiers { scratch.writeInteger(id) }
            statement.bind(6, bytes: scratch)
        }
        statement.bind(7, delivery.sharedFilter)
        statement.bind(8, delivery.packetID.map(Int64.init))
        statement.bind(9, delivery.released)
        return seq
    }

    private func retainedMessageID(topic: String) throws -> MessageID? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT message_id FROM retained WHERE topic = ?"), arguments: [topic])
            .map(RowCoding.messageID)
    }
}

/// The statements run once per message, prepared on first use in a transaction.
private struct PerMessageStatements {
    private var cache: [BoundStatement?] = Array(repeating: nil, count: 11)

    private mutating func statement(_ slot: Int, _ db: Database, _ sql: String) throws -> BoundStatement {
        if let statement = cache[slot] { return statement }
        let statement = try BoundStatement(db, sql: sql)
        cache[slot] = statement
        return statement
    }

    mutating func putMessage(_ db: Database) throws -> BoundStatement {
        try statement(0, db, """
            INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, publisher, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
    }

    mutating func enqueue(_ db: Database) throws -> BoundStatement {
        try statement(1, db, """
            INSERT INTO deliveries (seq, client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
    }

    mutating func inlineEnqueue(_ db: Database) throws -> BoundStatement {
        try statement(6, db, """
            INSERT INTO inline_deliveries (seq, client_id, message_id, qos, retain, subscription_ids, shared_filter,
                packet_id, released, topic, payload, message_qos, message_retain, properties, publisher, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
    }

    mutating func inlineDequeue(_ db: Database) throws -> BoundStatement {
        try statement(7, db, "DELETE FROM inline_deliveries WHERE seq = ?1")
    }

    mutating func inlineUpdate(_ db: Database) throws -> BoundStatement {
        try statement(8, db, "UPDATE inline_deliveries SET packet_id = ?1, released = ?2 WHERE seq = ?3")
    }

    mutating func releaseSent(_ db: Database) throws -> BoundStatement {
        try statement(9, db, """
            UPDATE deliveries SET released = 1 WHERE seq = (
                SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3
                    AND packet_id IS NOT NULL AND released = 0
                ORDER BY seq LIMIT 1)
            """)
    }

    mutating func releaseAny(_ db: Database) throws -> BoundStatement {
        try statement(10, db, """
            UPDATE deliveries SET released = 1 WHERE seq = (
                SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3 ORDER BY seq LIMIT 1)
            """)
    }

    mutating func dequeue(_ db: Database) throws -> BoundStatement {
        try statement(2, db, """
            DELETE FROM deliveries WHERE seq = (
                SELECT seq FROM deliveries WHERE client_id = ?1 AND message_id = ?2 ORDER BY seq LIMIT 1)
            """)
    }

    mutating func assignUnsent(_ db: Database) throws -> BoundStatement {
        try statement(4, db, """
            UPDATE deliveries SET packet_id = ?1 WHERE seq = (
                SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3 AND packet_id IS NULL
                ORDER BY seq LIMIT 1)
            """)
    }

    mutating func assignAny(_ db: Database) throws -> BoundStatement {
        try statement(5, db, """
            UPDATE deliveries SET packet_id = ?1 WHERE seq = (
                SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3 ORDER BY seq LIMIT 1)
            """)
    }

    mutating func collect(_ db: Database) throws -> BoundStatement {
        try statement(3, db, """
            DELETE FROM messages WHERE id = ?1
                AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?1)
                AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = ?1)
            """)
    }
}
