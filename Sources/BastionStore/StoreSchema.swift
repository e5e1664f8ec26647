import GRDB

/// The versioned schema. Migrations are append-only: a released migration is never edited; a
/// change is a new `registerMigration` (GRDB records applied ones in `grdb_migrations`).
/// docs/persistence.md describes the tables.
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Small key/value facts: the message id high-water mark.
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL
                ) WITHOUT ROWID;

                CREATE TABLE sessions (
                    client_id TEXT PRIMARY KEY NOT NULL,
                    expiry_interval INTEGER NOT NULL,
                    disconnected_at REAL,
                    subscriptions BLOB NOT NULL
                );

                -- Bodies, stored once; referenced by deliveries and retained.
                CREATE TABLE messages (
                    id INTEGER PRIMARY KEY,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    qos INTEGER NOT NULL,
                    retain INTEGER NOT NULL,
                    properties BLOB NOT NULL,
                    publisher TEXT NOT NULL,
                    expires_at REAL
                );

                -- One row per message owed to a session; seq (the rowid) is the queue order.
                CREATE TABLE deliveries (
                    seq INTEGER PRIMARY KEY,
                    client_id TEXT NOT NULL,
                    message_id INTEGER NOT NULL,
                    qos INTEGER NOT NULL,
                    retain INTEGER NOT NULL,
                    subscription_ids BLOB,
                    shared_filter TEXT,
                    packet_id INTEGER,
                    released INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX deliveries_by_client ON deliveries(client_id, message_id);
                CREATE INDEX deliveries_by_message ON deliveries(message_id);

                CREATE TABLE retained (
                    topic TEXT PRIMARY KEY NOT NULL,
                    message_id INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX retained_by_message ON retained(message_id);

                CREATE TABLE inbound_qos2 (
                    client_id TEXT NOT NULL,
                    packet_id INTEGER NOT NULL,
                    PRIMARY KEY (client_id, packet_id)
                ) WITHOUT ROWID;

                -- Written while commits fail, to find out whether a write of that size fits again.
                CREATE TABLE probe (
                    id INTEGER PRIMARY KEY,
                    data BLOB NOT NULL
                );

                -- Wide rows (blobs) keep their rowid; narrow key-only tables go WITHOUT ROWID.
                -- Wills waiting for their delay; the body is kept inline (one per session).
                CREATE TABLE wills (
                    client_id TEXT PRIMARY KEY NOT NULL,
                    publish_at REAL,
                    message_id INTEGER NOT NULL,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    qos INTEGER NOT NULL,
                    retain INTEGER NOT NULL,
                    properties BLOB NOT NULL,
                    publisher TEXT NOT NULL,
                    expires_at REAL
                );
                """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                -- A new message owed to exactly one session, stored with its body in one row: one
                -- insert and one delete instead of body, delivery, packet id, delete and body
                -- collection. seq is the same queue order as deliveries.seq (one counter); a
                -- restart moves these rows into messages and deliveries.
                CREATE TABLE inline_deliveries (
                    seq INTEGER PRIMARY KEY,
                    client_id TEXT NOT NULL,
                    message_id INTEGER NOT NULL,
                    qos INTEGER NOT NULL,
                    retain INTEGER NOT NULL,
                    subscription_ids BLOB,
                    shared_filter TEXT,
                    packet_id INTEGER,
                    released INTEGER NOT NULL DEFAULT 0,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    message_qos INTEGER NOT NULL,
                    message_retain INTEGER NOT NULL,
                    properties BLOB NOT NULL,
                    publisher TEXT NOT NULL,
                    expires_at REAL
                );
                CREATE INDEX inline_deliveries_by_client ON inline_deliveries(client_id, message_id);
                """)
        }
        migrator.registerMigration("v3") { db in
            // The writer finds inline rows by seq from memory (`InlineIndex`): an index entry
            // written and deleted per message is not worth it.
            try db.execute(sql: "DROP INDEX inline_deliveries_by_client")
        }
        migrator.registerMigration("v4") { db in
            // The identity a session belongs to: only it may resume, take over or end the session.
            // Sessions stored before owners were recorded have '' and are claimed by the next login.
            try db.execute(sql: "ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        }
        return migrator
    }
}
