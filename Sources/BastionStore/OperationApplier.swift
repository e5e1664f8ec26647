import BastionCore
import Foundation
import GRDB

/// Applies `StoreOperation`s inside the writer's open transaction, through prepared statements
/// cached by the connection. Bodies that may have lost their last reference are remembered and
/// checked once per batch (`collectGarbage`), each by two index lookups: no table scans.
struct OperationApplier {
    private let db: Database
    private(set) var highestMessageID: MessageID
    private var candidates: Set<MessageID> = []
    /// Bodies already written in this batch: a fan-out repeats `putMessage` once per session.
    private var written: Set<MessageID> = []

    init(db: Database, highestMessageID: MessageID) {
        self.db = db
        self.highestMessageID = highestMessageID
    }

    mutating func apply(_ operation: StoreOperation) throws {
        switch operation {
        case .saveSession(let record):
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO sessions (client_id, expiry_interval, disconnected_at, subscriptions)
                VALUES (?, ?, ?, ?)
                """).execute(arguments: [
                    record.clientID, Int64(record.expiryInterval), record.disconnectedAt,
                    RowCoding.subscriptions(record.subscriptions),
                ])

        case .deleteSession(let clientID):
            let ids = try Int64.fetchAll(
                db.cachedStatement(sql: "DELETE FROM deliveries WHERE client_id = ? RETURNING message_id"),
                arguments: [clientID])
            for id in ids { candidates.insert(RowCoding.messageID(id)) }
            try db.cachedStatement(sql: "DELETE FROM inbound_qos2 WHERE client_id = ?").execute(arguments: [clientID])
            try db.cachedStatement(sql: "DELETE FROM wills WHERE client_id = ?").execute(arguments: [clientID])
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE client_id = ?").execute(arguments: [clientID])

        case .putMessage(let message):
            // Not a collection candidate: the enqueue that refers to it may come in a later submit.
            try put(message)

        case .enqueue(let clientID, let delivery):
            try db.cachedStatement(sql: """
                INSERT INTO deliveries (client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    clientID, RowCoding.messageID(delivery.messageID), Int64(delivery.qos.rawValue), delivery.retain,
                    RowCoding.subscriptionIdentifiers(delivery.subscriptionIdentifiers), delivery.sharedFilter,
                    delivery.packetID.map { Int64($0) }, delivery.released,
                ])

        case .assignPacketID(let clientID, let messageID, let packetID):
            // One client may hold two deliveries of a message (shared and non-shared
            // subscription): the first one not yet sent gets the id (else the first one). Both
            // statements walk `deliveries_by_client` in seq order: no sorting.
            let arguments: StatementArguments = [Int64(packetID), clientID, RowCoding.messageID(messageID)]
            try db.cachedStatement(sql: """
                UPDATE deliveries SET packet_id = ?1 WHERE seq = (
                    SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3 AND packet_id IS NULL
                    ORDER BY seq LIMIT 1)
                """).execute(arguments: arguments)
            if db.changesCount == 0 {
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET packet_id = ?1 WHERE seq = (
                        SELECT seq FROM deliveries WHERE client_id = ?2 AND message_id = ?3 ORDER BY seq LIMIT 1)
                    """).execute(arguments: arguments)
            }

        case .markReleased(let clientID, let messageID):
            // The first sent and not yet released delivery (else the first one).
            let arguments: StatementArguments = [clientID, RowCoding.messageID(messageID)]
            try db.cachedStatement(sql: """
                UPDATE deliveries SET released = 1 WHERE seq = (
                    SELECT seq FROM deliveries WHERE client_id = ?1 AND message_id = ?2
                        AND packet_id IS NOT NULL AND released = 0
                    ORDER BY seq LIMIT 1)
                """).execute(arguments: arguments)
            if db.changesCount == 0 {
                try db.cachedStatement(sql: """
                    UPDATE deliveries SET released = 1 WHERE seq = (
                        SELECT seq FROM deliveries WHERE client_id = ?1 AND message_id = ?2 ORDER BY seq LIMIT 1)
                    """).execute(arguments: arguments)
            }

        case .dequeue(let clientID, let messageID):
            try db.cachedStatement(sql: """
                DELETE FROM deliveries WHERE seq = (
                    SELECT seq FROM deliveries WHERE client_id = ?1 AND message_id = ?2 ORDER BY seq LIMIT 1)
                """).execute(arguments: [clientID, RowCoding.messageID(messageID)])
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
        let statement = try db.cachedStatement(sql: """
            DELETE FROM messages WHERE id = ?1
                AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?1)
                AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = ?1)
            """)
        var collected = 0
        for id in candidates {
            try statement.execute(arguments: [RowCoding.messageID(id)])
            collected += db.changesCount
        }
        candidates.removeAll(keepingCapacity: true)
        return collected
    }

    private mutating func put(_ message: StoredMessage) throws {
        highestMessageID = max(highestMessageID, message.id)
        guard written.insert(message.id).inserted else { return }
        try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, publisher, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                RowCoding.messageID(message.id), message.topic, RowCoding.blob(message.payload),
                Int64(message.qos.rawValue), message.retain, RowCoding.properties(message.properties),
                message.publisherClientID, message.expiresAt,
            ])
    }

    private func retainedMessageID(topic: String) throws -> MessageID? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT message_id FROM retained WHERE topic = ?"), arguments: [topic])
            .map(RowCoding.messageID)
    }
}
