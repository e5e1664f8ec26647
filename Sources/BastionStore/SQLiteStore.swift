import BastionCore
import Dispatch
import Foundation
import GRDB
import Logging
import Synchronization

/// The durable store: one SQLite database (WAL mode) in the data directory, written by a single
/// writer thread with group commit. See docs/persistence.md.
///
/// `submit` never blocks on disk: it queues and returns. The writer commits everything queued
/// since its previous commit in one transaction and then runs the completions, on its thread, in
/// submission order. A failing commit (disk full, I/O error) is rolled back and its completions get
/// `.diskFull` / `.io`; the store keeps serving later submissions and recovers by itself.
public final class SQLiteStore: DurableStore {
    public let options: Options
    private let database: DatabaseQueue
    private let inbox = SubmissionInbox()
    private let inlineEpoch = InlineTableEpoch()
    private let monitor = StoreMonitor()
    private let logger: Logger
    private let writerFinished = DispatchSemaphore(value: 0)
    private let closed = Mutex(false)
    /// Identity of the writer's `Thread` (to spot calls made from a completion).
    /// Held strongly: an identifier of a thread object that was freed could be reused by another
    /// thread's, and `close()` would then skip waiting for the writer (and its lock).
    nonisolated(unsafe) private let writerThread: Thread  // compared by identity only

    /// Opens (creating when missing) the database and starts the writer thread.
    /// - Throws: `.unusable` when the directory or file cannot hold the state (corrupt file, not
    ///   writable, newer schema), `.diskFull` when there is no space to open it.
    public init(options: Options, logger: Logger = Logger(label: "bastion.store")) throws(StoreError) {
        self.options = options
        self.logger = logger
        let path = options.databasePath
        try DataDirectory.prepare(options)
        let lock = try DataDirectory.lock(options)
        if DataDirectory.isExposed(path) {
            logger.warning("store: the database file is readable by other users; chmod 600 it", metadata: ["path": "\(path)"])
        }

        var configuration = Configuration()
        configuration.label = "bastion-store"
        // Bodies and deliveries are linked by the store's own bookkeeping, not by constraints.
        configuration.foreignKeysEnabled = false
        // A ROLLBACK can itself fail on a broken disk; the writer rolls back again before its next
        // transaction instead of GRDB trapping on the open transaction.
        configuration.allowsUnsafeTransactions = true
        let synchronous = options.durability == .strict ? "FULL" : "NORMAL"
        let walSizeLimit = options.walSizeLimit
        configuration.prepareDatabase { db in
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode?.lowercased() == "wal" else {
                throw DatabaseError(message: "cannot enable WAL mode (journal mode is \(mode ?? "unknown"))")
            }
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA journal_size_limit = \(walSizeLimit)")
        }

        var database: DatabaseQueue?
        let position: WriterPosition
        let inlineEntries: [(MessageID, InlineIndex.Entry)]
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            database = queue
            let migrator = StoreSchema.migrator
            if try queue.read({ try migrator.hasBeenSuperseded($0) }) {
                throw StoreError.unusable("\(path) was written by a newer version of Bastion (unknown schema migrations)")
            }
            try migrator.migrate(queue)
            (position, inlineEntries) = try queue.write { db in
                // Proves the file is writable now rather than at the first acknowledgement.
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)",
                               arguments: [Int64(Date().timeIntervalSince1970)])
                let position = WriterPosition(
                    highestMessageID: try StoreLoader.highestMessageID(db), nextSeq: try StoreLoader.nextSeq(db))
                return (position, try InlineIndex.entries(db))
            }
        } catch {
            try? database?.close()
            DataDirectory.unlock(lock)
            throw StoreErrorMapping.startup(error, path: path)
        }
        guard let database else { throw .unusable("\(path): not opened") }
        self.database = database

        let writer = StoreWriterStart(
            database: database, inbox: inbox, monitor: monitor, options: options, logger: logger,
            position: position, inlineEntries: inlineEntries, inlineEpoch: inlineEpoch, lock: lock, finished: writerFinished)
        let thread = Thread { writer.run() }
        writerThread = thread
        thread.start()
        logger.info("store: opened", metadata: ["path": "\(path)", "durability": "\(options.durability.rawValue)"])
    }

    deinit {
        // Without close(): let the writer drain, checkpoint and close on its own.
        inbox.close()
    }

    public func submit(_ operations: [StoreOperation], completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        if !inbox.submit(Submission(operations: operations, completion: completion)) {
            completion(.failure(.io("store is closed")))
        }
    }

    /// Purges what expired while the broker was down (see `StoreLoader`) and returns the rest.
    /// Call at startup; submissions queued before it are committed first.
    public func load(now: WallClock) throws(StoreError) -> StoredBrokerState {
        flush()
        do {
            return try database.inDatabase { db in
                if db.isInsideTransaction { try? db.rollback() }
                var purged = StoreLoader.Purged()
                try db.inTransaction(.immediate) {
                    purged = try StoreLoader.purge(db, now: now)
                    return .commit
                }
                // The purge moved inline rows into deliveries.
                inlineEpoch.advance()
                var state = try StoreLoader.read(db)
                state.endedSessionWills = purged.wills
                logger.info(
                    "store: loaded",
                    metadata: [
                        "sessions": "\(state.sessions.count)", "messages": "\(state.messages.count)",
                        "retained": "\(state.retained.count)", "expired_sessions": "\(purged.sessions)",
                        "dropped_deliveries": "\(purged.deliveries)", "expired_retained": "\(purged.retained)",
                        "collected_bodies": "\(purged.bodies)", "ended_session_wills": "\(purged.wills.count)",
                    ])
                return state
            }
        } catch {
            throw StoreErrorMapping.startup(error, path: options.databasePath)
        }
    }

    /// Commits everything queued, makes it durable, stops the writer and closes the database.
    /// Later submissions complete with `.io("store is closed")`.
    public func close() {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        inbox.close()
        // Called from a completion (on the writer thread): the writer finishes after it returns.
        guard !isWriterThread else { return }
        writerFinished.wait()
        logger.info("store: closed", metadata: ["path": "\(options.databasePath)"])
    }

    /// Waits until everything submitted before this call is committed (or failed). From a
    /// completion (on the writer thread) it returns at once: waiting there would wait for itself.
    public func flush() {
        guard !isWriterThread else { return }
        let done = DispatchSemaphore(value: 0)
        if inbox.submit(Submission(operations: [], completion: { _ in done.signal() })) {
            done.wait()
        }
    }

    private var isWriterThread: Bool { Thread.current === writerThread }

    /// Cheap (one atomic load): false while commits fail.
    public var isHealthy: Bool { monitor.isHealthy }

    public var health: Health { monitor.currentHealth }

    public var statistics: Statistics { monitor.currentStatistics }

    /// Message bodies currently stored (for metrics; shows that collection keeps up).
    public func storedMessageCount() throws(StoreError) -> Int {
        do {
            return try database.inDatabase { try Int.fetchOne($0, sql: "SELECT count(*) FROM messages") ?? 0 }
        } catch {
            throw StoreErrorMapping.runtime(error, path: options.databasePath)
        }
    }

    /// SQLite's `PRAGMA quick_check`: the problems found, empty when the file is sound.
    public func integrityProblems() throws(StoreError) -> [String] {
        do {
            let lines = try database.inDatabase { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            return lines == ["ok"] ? [] : lines
        } catch {
            throw StoreErrorMapping.runtime(error, path: options.databasePath)
        }
    }
}

/// Everything the writer thread needs, all Sendable; the writer itself is created on its thread
/// and never leaves it.
private struct StoreWriterStart: Sendable {
    var database: DatabaseQueue
    var inbox: SubmissionInbox
    var monitor: StoreMonitor
    var options: SQLiteStore.Options
    var logger: Logger
    var position: WriterPosition
    var inlineEntries: [(MessageID, InlineIndex.Entry)]
    var inlineEpoch: InlineTableEpoch
    /// The data directory lock, released once the database is closed.
    var lock: Int32
    var finished: DispatchSemaphore

    func run() {
        // Named from inside: the OS thread name (top -H, perf) is only set by the thread itself.
        Thread.current.name = "bastion-store"
        StoreWriter(
            database: database, inbox: inbox, monitor: monitor, options: options, logger: logger, position: position,
            inline: InlineIndex(inlineEntries, epoch: inlineEpoch.value), inlineEpoch: inlineEpoch
        ).run()
        DataDirectory.unlock(lock)
        finished.signal()
    }
}
