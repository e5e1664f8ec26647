import BastionCore
import Dispatch
import Foundation
import GRDB
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The single writer: runs on its own thread (never an event loop), takes everything submitted
/// since its last commit, applies it in one transaction, commits (one fsync in strict mode) and
/// then runs the completions in submission order. All its mutable state lives on that thread.
final class StoreWriter {
    private let database: DatabaseQueue
    private let inbox: SubmissionInbox
    private let monitor: StoreMonitor
    private let options: SQLiteStore.Options
    private let logger: Logger
    /// Where the committed state stands: id high-water mark, queue order.
    private var position: WriterPosition
    /// Where the inline deliveries are.
    private let inline: InlineIndex
    private let inlineEpoch: InlineTableEpoch
    /// Relaxed durability: commits made since the last fsync.
    private var unsynced = false
    private var lastSync = DispatchTime.now()
    /// When a commit was last attempted (drives the retry probe while failing).
    private var lastAttempt = DispatchTime.now()
    /// Roughly how many bytes the last failed batch needed (the size the retry probe writes).
    private var failedBatchBytes = 0
    private var lastFailureLog = DispatchTime(uptimeNanoseconds: 0)
    private var failuresSinceLog = 0

    init(
        database: DatabaseQueue, inbox: SubmissionInbox, monitor: StoreMonitor, options: SQLiteStore.Options,
        logger: Logger, position: WriterPosition, inline: InlineIndex, inlineEpoch: InlineTableEpoch
    ) {
        self.database = database
        self.inbox = inbox
        self.monitor = monitor
        self.options = options
        self.logger = logger
        self.position = position
        self.inline = inline
        self.inlineEpoch = inlineEpoch
    }

    func run() {
        while true {
            switch inbox.next(
                deadline: nextDeadline(), gather: options.batchDelay, target: options.batchTarget,
                limit: options.maxBatchOperations)
            {
            case .batch(let batch): commit(batch)
            case .idle: break
            case .closed:
                finish()
                return
            }
            runTimedWork()
        }
    }

    // MARK: Commit

    /// A submission raised an error that is its own (not the disk's): it fails alone and the rest
    /// of the batch is retried without it.
    private struct SubmissionFailed: Error {
        var index: Int
        var error: any Error
    }

    private func commit(_ batch: [Submission]) {
        if batch.allSatisfy({ $0.operations.isEmpty }) {
            // Flush markers: nothing to write, and no evidence about the disk's health.
            for submission in batch { submission.completion(.success(())) }
            return
        }
        var results = [Result<Void, StoreError>?](repeating: nil, count: batch.count)
        while true {
            let live = batch.indices.filter { results[$0] == nil }
            if live.isEmpty { break }
            lastAttempt = .now()
            do {
                let (collected, settled) = try database.inDatabase { db in try applyInTransaction(db, batch, live) }
                for i in live { results[i] = .success(()) }
                let operations = live.reduce(0) { $0 + batch[$1].operations.count }
                monitor.count {
                    $0.commits += 1
                    $0.committedSubmissions += live.count
                    $0.committedOperations += operations
                    $0.collectedBodies += collected
                    $0.settledDeliveries += settled
                }
                unsynced = true
                noteSuccess()
                break
            } catch let failure as SubmissionFailed {
                let error = StoreErrorMapping.runtime(failure.error, path: options.databasePath)
                logger.error("store: a submission was rejected and not applied", metadata: ["error": "\(error)"])
                results[failure.index] = .failure(error)
                monitor.count { $0.failedCommits += 1 }
            } catch {
                let error = StoreErrorMapping.runtime(error, path: options.databasePath)
                for i in live { results[i] = .failure(error) }
                monitor.count { $0.failedCommits += 1 }
                failedBatchBytes = live.reduce(0) { $0 + Self.estimatedBytes(batch[$1].operations) }
                noteFailure(error)
                break
            }
        }
        var failed = 0
        for (submission, result) in zip(batch, results) {
            let result = result ?? .failure(.io("not applied"))
            if case .failure = result { failed += 1 }
            submission.completion(result)
        }
        if failed > 0 { monitor.count { $0.failedSubmissions += failed } }
    }

    /// One transaction for every live submission of the batch. Any error rolls everything back.
    private func applyInTransaction(_ db: Database, _ batch: [Submission], _ live: [Int]) throws -> (collected: Int, settled: Int) {
        // A ROLLBACK that failed earlier (I/O error) may have left a transaction open.
        if db.isInsideTransaction { try? db.rollback() }
        try inline.reloadIfNeeded(db, inlineEpoch)
        try db.beginTransaction(.immediate)
        var settled = 0
        do {
            var applier = OperationApplier(db: db, position: position, inline: inline)
            var held: [MessageID: StoredMessage] = [:]
            let plan = DeliveryCoalescing(batch, live)
            var index = 0
            for i in live {
                do {
                    let operations = batch[i].operations
                    for position in operations.indices {
                        defer { index += 1 }
                        switch plan.actions[index] {
                        case .apply:
                            try applier.apply(operations[position])
                        case .skip:
                            break
                        case .insert(let packetID, let released):
                            try applier.enqueue(operations[position], packetID: packetID, released: released)
                        case .holdBody:
                            if case .putMessage(let message, _) = operations[position] { held[message.id] = message }
                        case .insertInline(let packetID, let released):
                            try applier.enqueueInline(operations[position], packetID: packetID, released: released, bodies: held)
                        }
                    }
                } catch where !StoreErrorMapping.failsWholeBatch(error) {
                    throw SubmissionFailed(index: i, error: error)
                }
            }
            settled = plan.settledDeliveries
            try applier.writeInlineUpdates()
            let collected = try applier.collectGarbage()
            if applier.position.highestMessageID > position.highestMessageID {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('highest_message_id', ?)")
                    .execute(arguments: [RowCoding.messageID(applier.position.highestMessageID)])
            }
            try db.commit()
            position = applier.position
            return (collected, settled)
        } catch {
            try? db.rollback()
            inline.markStale()
            throw error
        }
    }

    /// What a batch needs in the WAL, on the generous side (so that a probe of this size fitting
    /// means the batch would fit too): every row touches a few 4 KiB pages (table and index
    /// leaves, each written as a WAL frame), payloads fill overflow pages.
    private static func estimatedBytes(_ operations: [StoreOperation]) -> Int {
        let perRow = 16 << 10
        return operations.reduce(4096) { total, operation in
            switch operation {
            case .putMessage(let m, _), .setRetained(let m), .setPendingWill(_, let m?, _):
                total + perRow + (m.payload.readableBytes + m.topic.utf8.count) * 11 / 10
            case .saveSession(let record):
                total + perRow + record.subscriptions.reduce(0) { $0 + $1.filter.utf8.count + 9 } * 11 / 10
            default:
                total + perRow
            }
        }
    }

    // MARK: Health

    private func noteSuccess() {
        let previous = monitor.recordSuccess()
        guard !previous.isHealthy else { return }
        let seconds = previous.failingSince.map { Date().timeIntervalSince1970 - $0 } ?? 0
        logger.warning(
            "store: commits succeed again; acknowledging QoS 1/2 messages resumes",
            metadata: [
                "failed_commits": "\(previous.consecutiveFailures)",
                "failing_for_seconds": "\(Int(seconds.rounded()))",
            ])
        failuresSinceLog = 0
    }

    private func noteFailure(_ error: StoreError) {
        let previous = monitor.recordFailure(error, at: Date().timeIntervalSince1970)
        failuresSinceLog += 1
        let now = DispatchTime.now()
        if previous.isHealthy {
            logger.critical(
                "store: commit failed and was rolled back; QoS 1/2 messages are not acknowledged until the store recovers",
                metadata: ["error": "\(error)", "path": "\(options.databasePath)"])
        } else if now.uptimeNanoseconds >= lastFailureLog.uptimeNanoseconds + 10_000_000_000 {
            logger.error(
                "store: commits still failing",
                metadata: ["error": "\(error)", "failed_since_last_report": "\(failuresSinceLog)"])
        } else {
            return
        }
        lastFailureLog = now
        failuresSinceLog = 0
    }

    // MARK: Timed work: relaxed fsync, retry probe

    private func nextDeadline() -> DispatchTime {
        var deadline = DispatchTime.distantFuture
        if options.durability == .relaxed && unsynced {
            deadline = min(deadline, lastSync + .nanoseconds(options.fsyncInterval.nanoseconds))
        }
        if !monitor.isHealthy {
            deadline = min(deadline, lastAttempt + .nanoseconds(options.retryInterval.nanoseconds))
        }
        return deadline
    }

    private func runTimedWork() {
        let now = DispatchTime.now()
        if options.durability == .relaxed && unsynced
            && now >= lastSync + .nanoseconds(options.fsyncInterval.nanoseconds)
        {
            syncRelaxed()
        }
        if !monitor.isHealthy && now >= lastAttempt + .nanoseconds(options.retryInterval.nanoseconds) {
            probe()
        }
    }

    /// Relaxed durability: makes every commit so far durable by fsyncing the WAL file (where
    /// committed transactions live until checkpointed), falling back to a checkpoint.
    private func syncRelaxed() {
        lastSync = .now()
        let walPath = options.databasePath + "-wal"
        let fd = open(walPath, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            let synced = fsync(fd) == 0
            let code = errno
            close(fd)
            if synced {
                unsynced = false
                monitor.count { $0.periodicSyncs += 1 }
                return
            }
            logger.error("store: fsync of the WAL failed", metadata: ["path": "\(walPath)", "errno": "\(code)"])
        }
        do {
            try database.inDatabase { db in _ = try db.checkpoint(.passive) }
            unsynced = false
            monitor.count { $0.periodicSyncs += 1 }
        } catch {
            logger.error("store: checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    /// While failing and idle: writes (then deletes) as many bytes as the failed batch needed, so
    /// health comes back by itself when such a write fits again, without waiting for traffic and
    /// without flapping on tiny writes that still fit.
    private func probe() {
        lastAttempt = .now()
        let size = min(max(failedBatchBytes, 4096), 8 << 20)
        do {
            try database.inDatabase { db in
                if db.isInsideTransaction { try? db.rollback() }
                try db.inTransaction(.immediate) {
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO probe (id, data) VALUES (1, zeroblob(?))")
                        .execute(arguments: [size])
                    return .commit
                }
                // Give the space back to the next real commit; harmless if this one fails.
                try? db.inTransaction(.immediate) {
                    try db.execute(sql: "DELETE FROM probe")
                    return .commit
                }
            }
            noteSuccess()
        } catch {
            noteFailure(StoreErrorMapping.runtime(error, path: options.databasePath))
        }
    }

    /// Closing: everything queued was committed; make it durable and small, then close.
    private func finish() {
        let statistics = monitor.currentStatistics
        logger.info(
            "store: closing",
            metadata: [
                "commits": "\(statistics.commits)", "operations": "\(statistics.committedOperations)",
                "settled_deliveries": "\(statistics.settledDeliveries)", "collected_bodies": "\(statistics.collectedBodies)",
                "failed_commits": "\(statistics.failedCommits)",
            ])
        do {
            try database.inDatabase { db in
                if db.isInsideTransaction { try? db.rollback() }
                _ = try db.checkpoint(.truncate)
            }
        } catch {
            // The WAL stays; the next open recovers from it.
            logger.warning("store: final checkpoint failed", metadata: ["error": "\(error)"])
            if options.durability == .relaxed { syncRelaxed() }
        }
        do {
            try database.close()
        } catch {
            logger.warning("store: closing the database failed", metadata: ["error": "\(error)"])
        }
    }
}

/// What the writer knows of the committed state, carried from one transaction to the next (a
/// rolled-back transaction leaves it unchanged).
struct WriterPosition: Sendable {
    var highestMessageID: MessageID
    /// The next `seq`: deliveries and inline deliveries share one queue order.
    var nextSeq: Int64
}
