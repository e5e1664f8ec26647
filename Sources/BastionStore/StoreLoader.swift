import BastionCore
import Foundation
import GRDB

/// Startup: purges what expired while the broker was down, then reads everything back.
/// The purge rules are `StoredSessionRecord.hasExpired` and `StoredMessage.hasExpired`, the ones
/// `InMemoryStore` applies.
enum StoreLoader {
    struct Purged: Equatable {
        var sessions = 0
        var deliveries = 0
        var retained = 0
        var bodies = 0
        /// Pending wills of the expired sessions, due now (see `StoredBrokerState.endedSessionWills`).
        var wills: [StoredMessage] = []
    }

    static func purge(_ db: Database, now: WallClock) throws -> Purged {
        var purged = Purged()
        try normalizeInlineDeliveries(db)
        var expired: [String] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT client_id, expiry_interval, disconnected_at FROM sessions")
        while let row = try rows.next() {
            let clientID: String = try row.decode(atIndex: 0)
            guard let interval = UInt32(exactly: try row.decode(Int64.self, atIndex: 1)) else {
                throw RowDecodingFailure(description: "session \(clientID): invalid expiry interval")
            }
            let disconnectedAt: WallClock? = try row.decode(atIndex: 2)
            let record = StoredSessionRecord(
                clientID: clientID, expiryInterval: interval, subscriptions: [], disconnectedAt: disconnectedAt)
            if record.hasExpired(at: now) { expired.append(clientID) }
        }
        for clientID in expired {
            if let row = try Row.fetchOne(db, sql: """
                SELECT message_id, topic, payload, qos, retain, properties, publisher, expires_at FROM wills WHERE client_id = ?
                """, arguments: [clientID]) {
                let will = try message(row, from: 0)
                if !will.hasExpired(at: now) { purged.wills.append(will) }
            }
            try db.execute(sql: "DELETE FROM sessions WHERE client_id = ?", arguments: [clientID])
        }
        purged.wills.sort { $0.publisherClientID < $1.publisherClientID }
        purged.sessions = expired.count

        // Leftovers of deleted sessions (also anything enqueued for a client with no record).
        try db.execute(sql: "DELETE FROM deliveries WHERE client_id NOT IN (SELECT client_id FROM sessions)")
        purged.deliveries += db.changesCount
        try db.execute(sql: "DELETE FROM inbound_qos2 WHERE client_id NOT IN (SELECT client_id FROM sessions)")
        try db.execute(sql: "DELETE FROM wills WHERE client_id NOT IN (SELECT client_id FROM sessions)")

        // Expired messages: deliveries not yet begun go; one already sent (it has a packet id)
        // is finished. Expired retained messages go.
        try db.execute(sql: """
            DELETE FROM deliveries WHERE packet_id IS NULL
                AND message_id IN (SELECT id FROM messages WHERE expires_at <= ?)
            """, arguments: [now])
        purged.deliveries += db.changesCount
        try db.execute(sql: """
            DELETE FROM retained WHERE message_id IN (SELECT id FROM messages WHERE expires_at <= ?)
                OR message_id NOT IN (SELECT id FROM messages)
            """, arguments: [now])
        purged.retained = db.changesCount
        // A delivery whose body is missing cannot be sent.
        try db.execute(sql: "DELETE FROM deliveries WHERE message_id NOT IN (SELECT id FROM messages)")
        purged.deliveries += db.changesCount

        // Bodies nothing refers to (including ones put but never enqueued): the one full sweep.
        try db.execute(sql: """
            DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries)
                AND id NOT IN (SELECT message_id FROM retained)
            """)
        purged.bodies = db.changesCount
        return purged
    }

    static func read(_ db: Database) throws -> StoredBrokerState {
        var deliveries: [String: [StoredDelivery]] = [:]
        let deliveryRows = try Row.fetchCursor(db, sql: """
            SELECT client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released
            FROM deliveries ORDER BY seq
            """)
        while let row = try deliveryRows.next() {
            let clientID: String = try row.decode(atIndex: 0)
            let packetID: Int64? = try row.decode(atIndex: 6)
            var delivery = StoredDelivery(
                messageID: RowCoding.messageID(try row.decode(Int64.self, atIndex: 1)),
                qos: try RowCoding.decodeQoS(try row.decode(atIndex: 2)),
                retain: try row.decode(atIndex: 3),
                subscriptionIdentifiers: try RowCoding.decodeSubscriptionIdentifiers(try row.decode(atIndex: 4)),
                sharedFilter: try row.decode(atIndex: 5),
                released: try row.decode(atIndex: 7))
            if let packetID {
                guard let id = UInt16(exactly: packetID), id != 0 else {
                    throw RowDecodingFailure(description: "delivery to \(clientID): invalid packet identifier \(packetID)")
                }
                delivery.packetID = id
            }
            deliveries[clientID, default: []].append(delivery)
        }

        var inbound: [String: [UInt16]] = [:]
        let inboundRows = try Row.fetchCursor(
            db, sql: "SELECT client_id, packet_id FROM inbound_qos2 ORDER BY client_id, packet_id")
        while let row = try inboundRows.next() {
            let clientID: String = try row.decode(atIndex: 0)
            guard let id = UInt16(exactly: try row.decode(Int64.self, atIndex: 1)) else {
                throw RowDecodingFailure(description: "inbound QoS 2 state of \(clientID): invalid packet identifier")
            }
            inbound[clientID, default: []].append(id)
        }

        var wills: [String: (StoredMessage, WallClock?)] = [:]
        let willRows = try Row.fetchCursor(db, sql: """
            SELECT client_id, publish_at, message_id, topic, payload, qos, retain, properties, publisher, expires_at
            FROM wills
            """)
        while let row = try willRows.next() {
            let clientID: String = try row.decode(atIndex: 0)
            let publishAt: WallClock? = try row.decode(atIndex: 1)
            wills[clientID] = (try message(row, from: 2), publishAt)
        }

        var sessions: [StoredSession] = []
        let sessionRows = try Row.fetchCursor(
            db, sql: "SELECT client_id, expiry_interval, disconnected_at, subscriptions, owner FROM sessions")
        while let row = try sessionRows.next() {
            let clientID: String = try row.decode(atIndex: 0)
            guard let interval = UInt32(exactly: try row.decode(Int64.self, atIndex: 1)) else {
                throw RowDecodingFailure(description: "session \(clientID): invalid expiry interval")
            }
            let subscriptions: [Subscription]
            do {
                subscriptions = try RowCoding.decodeSubscriptions(try row.decode(atIndex: 3))
            } catch {
                throw RowDecodingFailure(description: "session \(clientID): \(error)")
            }
            let disconnectedAt: WallClock? = try row.decode(atIndex: 2)
            let will = wills[clientID]
            sessions.append(StoredSession(
                record: StoredSessionRecord(
                    clientID: clientID, expiryInterval: interval, subscriptions: subscriptions, disconnectedAt: disconnectedAt,
                    owner: try row.decode(atIndex: 4)),
                deliveries: deliveries[clientID] ?? [], inboundQoS2: inbound[clientID] ?? [],
                pendingWill: will?.0, willPublishAt: will?.1))
        }
        sessions.sort { $0.record.clientID < $1.record.clientID }

        var messages: [MessageID: StoredMessage] = [:]
        let messageRows = try Row.fetchCursor(db, sql: """
            SELECT id, topic, payload, qos, retain, properties, publisher, expires_at FROM messages
            WHERE id IN (SELECT message_id FROM deliveries)
            """)
        while let row = try messageRows.next() {
            let message = try message(row, from: 0)
            messages[message.id] = message
        }

        var retained: [StoredMessage] = []
        let retainedRows = try Row.fetchCursor(db, sql: """
            SELECT m.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.publisher, m.expires_at
            FROM retained r JOIN messages m ON m.id = r.message_id
            """)
        while let row = try retainedRows.next() {
            retained.append(try message(row, from: 0))
        }
        retained.sort { $0.topic < $1.topic }

        var highest = RowCoding.messageID(
            try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'highest_message_id'") ?? 0)
        for sql in ["SELECT id FROM messages", "SELECT message_id FROM wills"] {
            let ids = try Int64.fetchCursor(db, sql: sql)
            while let id = try ids.next() { highest = max(highest, RowCoding.messageID(id)) }
        }
        return StoredBrokerState(
            sessions: sessions, messages: messages, retained: retained,
            nextMessageID: highest == .max ? highest : highest + 1)
    }

    /// Reads id, topic, payload, qos, retain, properties, publisher, expires_at from `start` on.
    private static func message(_ row: Row, from start: Int) throws -> StoredMessage {
        let id = RowCoding.messageID(try row.decode(Int64.self, atIndex: start))
        do {
            return StoredMessage(
                id: id,
                topic: try row.decode(atIndex: start + 1),
                payload: RowCoding.buffer(try row.decode(atIndex: start + 2)),
                qos: try RowCoding.decodeQoS(try row.decode(atIndex: start + 3)),
                retain: try row.decode(atIndex: start + 4),
                properties: try RowCoding.decodeProperties(try row.decode(atIndex: start + 5)),
                publisherClientID: try row.decode(atIndex: start + 6),
                expiresAt: try row.decode(atIndex: start + 7))
        } catch {
            throw RowDecodingFailure(description: "message \(id): \(error)")
        }
    }

    /// Inline deliveries become a body and a delivery, in their queue position, so that what
    /// follows (purge rules, reading) has one representation to deal with.
    static func normalizeInlineDeliveries(_ db: Database) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, publisher, expires_at)
                SELECT message_id, topic, payload, message_qos, message_retain, properties, publisher, expires_at
                FROM inline_deliveries;
            INSERT INTO deliveries (seq, client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released)
                SELECT seq, client_id, message_id, qos, retain, subscription_ids, shared_filter, packet_id, released
                FROM inline_deliveries;
            DELETE FROM inline_deliveries;
            """)
    }

    /// Where the writer's queue order continues.
    static func nextSeq(_ db: Database) throws -> Int64 {
        let highest = try Int64.fetchOne(db, sql: """
            SELECT max(coalesce((SELECT max(seq) FROM deliveries), 0), coalesce((SELECT max(seq) FROM inline_deliveries), 0))
            """) ?? 0
        return highest + 1
    }

    /// The message id high-water mark the writer starts from.
    static func highestMessageID(_ db: Database) throws -> MessageID {
        RowCoding.messageID(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'highest_message_id'") ?? 0)
    }
}
