extension SQLiteStore {
    /// How far a commit is on disk before its completion runs.
    public enum Durability: String, Sendable, CaseIterable {
        /// `synchronous=FULL`: the WAL is fsynced by every commit, before any completion of it
        /// runs. An acknowledged message survives power loss.
        case strict
        /// `synchronous=NORMAL`: commits reach the OS, a checkpoint fsyncs every `fsyncInterval`.
        /// Survives the process being killed (kill -9, crash); a power loss or kernel panic may
        /// lose what was committed in the last interval.
        case relaxed
    }

    public struct Options: Sendable {
        /// Created (mode 0700) when missing.
        public var directory: String
        /// The database file inside `directory`, created with mode 0600.
        public var fileName: String
        public var durability: Durability
        /// Relaxed durability only: the longest time a commit may stay un-fsynced.
        public var fsyncInterval: Duration
        /// After the first queued submission, wait up to this long for `batchTarget` operations
        /// before committing. Zero (the default) commits at once: batches still form naturally
        /// from everything submitted while the previous commit was being fsynced.
        public var batchDelay: Duration
        /// Operations that end a `batchDelay` wait early.
        public var batchTarget: Int
        /// The most operations one transaction takes (bounds its duration and WAL growth); a
        /// larger backlog is committed in several transactions, in order.
        public var maxBatchOperations: Int
        /// While commits fail (disk full, I/O error), a small write is retried this often when no
        /// submissions arrive, so health recovers by itself when space returns.
        public var retryInterval: Duration
        /// Bytes the WAL file is truncated to after a checkpoint (SQLite `journal_size_limit`).
        public var walSizeLimit: Int

        public init(
            directory: String, fileName: String = "bastion.sqlite3", durability: Durability = .strict,
            fsyncInterval: Duration = .milliseconds(1000), batchDelay: Duration = .zero, batchTarget: Int = 1024,
            maxBatchOperations: Int = 16_384, retryInterval: Duration = .seconds(1), walSizeLimit: Int = 64 << 20
        ) {
            self.directory = directory
            self.fileName = fileName
            self.durability = durability
            self.fsyncInterval = fsyncInterval
            self.batchDelay = batchDelay
            self.batchTarget = batchTarget
            self.maxBatchOperations = max(1, maxBatchOperations)
            self.retryInterval = retryInterval
            self.walSizeLimit = walSizeLimit
        }

        public var databasePath: String {
            directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
        }
    }
}
