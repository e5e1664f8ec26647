import BastionCore
import Synchronization

extension SQLiteStore {
    /// What /readyz and alerts read. `lastError` is kept after recovery for diagnostics.
    public struct Health: Sendable, CustomStringConvertible {
        public var isHealthy: Bool
        /// The error of the last failed commit, if any commit ever failed.
        public var lastError: StoreError?
        /// Wall clock of the first failure of the current failing streak; nil while healthy.
        public var failingSince: WallClock?
        /// Failed commits (and retries) in the current failing streak.
        public var consecutiveFailures: Int

        public var description: String {
            if isHealthy { return "healthy" }
            return "failing (\(consecutiveFailures) failed commits): \(lastError.map { "\($0)" } ?? "unknown error")"
        }
    }

    /// Counters since open, for tests and metrics.
    public struct Statistics: Sendable, Equatable {
        /// Committed transactions of submissions (each holds one or more).
        public var commits: Int
        /// Submissions whose completion reported success.
        public var committedSubmissions: Int
        /// Submissions whose completion reported an error.
        public var failedSubmissions: Int
        /// Operations applied in committed transactions.
        public var committedOperations: Int
        /// Transactions that were rolled back because of an error.
        public var failedCommits: Int
        /// Message bodies deleted because nothing referred to them any more.
        public var collectedBodies: Int
        /// Deliveries enqueued and finished within one commit, so never written.
        public var settledDeliveries: Int
        /// Relaxed durability: periodic fsyncs of the WAL (or checkpoints) done.
        public var periodicSyncs: Int
    }
}

/// State shared by the writer thread (which updates it) and any thread reading health or
/// statistics. Reads are cheap: one atomic load for `isHealthy`.
final class StoreMonitor: Sendable {
    private let healthy = Atomic<Bool>(true)
    private let health = Mutex(SQLiteStore.Health(isHealthy: true, lastError: nil, failingSince: nil, consecutiveFailures: 0))
    private let statistics = Mutex(SQLiteStore.Statistics(
        commits: 0, committedSubmissions: 0, failedSubmissions: 0, committedOperations: 0, failedCommits: 0,
        collectedBodies: 0, settledDeliveries: 0, periodicSyncs: 0))

    var isHealthy: Bool { healthy.load(ordering: .relaxed) }
    var currentHealth: SQLiteStore.Health { health.withLock { $0 } }
    var currentStatistics: SQLiteStore.Statistics { statistics.withLock { $0 } }

    /// Returns the health before the change, so the caller logs transitions once.
    func recordSuccess() -> SQLiteStore.Health {
        let previous = health.withLock { h in
            let previous = h
            h.isHealthy = true
            h.failingSince = nil
            h.consecutiveFailures = 0
            return previous
        }
        healthy.store(true, ordering: .relaxed)
        return previous
    }

    func recordFailure(_ error: StoreError, at now: WallClock) -> SQLiteStore.Health {
        let previous = health.withLock { h in
            let previous = h
            h.isHealthy = false
            h.lastError = error
            h.failingSince = h.failingSince ?? now
            h.consecutiveFailures += 1
            return previous
        }
        healthy.store(false, ordering: .relaxed)
        return previous
    }

    func count(_ update: (inout SQLiteStore.Statistics) -> Void) {
        statistics.withLock { update(&$0) }
    }
}
