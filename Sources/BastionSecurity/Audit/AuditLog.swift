import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where audit records go. Disabled when there is neither a path nor stdout.
public struct AuditSinkConfiguration: Sendable, Hashable {
    /// JSON Lines file (appended; created with mode 0640).
    public var path: String?
    public var stdout = false
    /// Rotate when the file would grow past this many bytes (0: never).
    public var maximumFileBytes = 100 * 1024 * 1024
    /// Rotated files kept: FILE.1 (newest) … FILE.N.
    public var maximumFiles = 5
    /// Records waiting for the writer at most; beyond this they are dropped and counted.
    public var queueCapacity = 65_536

    public init(path: String? = nil, stdout: Bool = false) {
        self.path = path
        self.stdout = stdout
    }

    public var isEnabled: Bool { path != nil || stdout }
}

public struct AuditLogError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The audit log: `record` is cheap and never blocks (a bounded queue under a short lock; when the
/// queue is full the record is dropped and counted, and an `audit_dropped` record says so later).
/// A dedicated writer thread encodes records as JSON Lines and writes them to the file (rotating it
/// by size) and/or stdout, so no event loop ever waits for a disk.
public final class AuditLog: Sendable {
    private enum Item: Sendable {
        /// An encoded line: the queue holds bytes bounded per record (`JSONText.maximumStringBytes`
        /// per field), never the client-chosen strings an event was built from.
        case record([UInt8])
        case barrier(CheckedContinuation<Void, Never>)
    }

    private struct Queue: Sendable {
        var items: [Item] = []
        var droppedSinceWrite = 0
        var closed = false
    }

    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let capacity: Int
    private let clock: @Sendable () -> Int64
    private let dropped = Atomic<Int>(0)
    private let written = Atomic<Int>(0)
    /// The writer until its thread starts.
    private let pendingWriter = Mutex<Writer?>(nil)
    public let isEnabled: Bool

    /// A log that records nothing.
    public static let disabled = AuditLog()

    private init() {
        capacity = 0
        clock = { 0 }
        isEnabled = false
        queue.withLock { $0.closed = true }
    }

    /// Opens the file (failing here, at startup, if it cannot be written) and starts the writer.
    /// - Parameters:
    ///   - clock: wall-clock milliseconds since the epoch (injected by tests).
    ///   - onError: told about write failures (the broker logs them); called on the writer thread.
    public convenience init(_ configuration: AuditSinkConfiguration,
                            clock: @escaping @Sendable () -> Int64 = { RFC3339.nowMilliseconds() },
                            onError: @escaping @Sendable (String) -> Void = { _ in }) throws(AuditLogError) {
        try self.init(configuration, clock: clock, onError: onError, paused: false)
    }

    private init(_ configuration: AuditSinkConfiguration, clock: @escaping @Sendable () -> Int64,
                 onError: @escaping @Sendable (String) -> Void, paused: Bool) throws(AuditLogError) {
        self.capacity = max(1, configuration.queueCapacity)
        self.clock = clock
        self.isEnabled = configuration.isEnabled
        guard configuration.isEnabled else {
            queue.withLock { $0.closed = true }
            return
        }
        var file: AuditFile?
        if let path = configuration.path {
            file = try AuditFile(path: path, maximumBytes: configuration.maximumFileBytes, maximumFiles: configuration.maximumFiles)
        }
        pendingWriter.withLock { $0 = Writer(file: file, stdout: configuration.stdout, onError: onError) }
        if !paused { startWriter() }
    }

    /// Tests: the same, with the writer not started until `startWriter()`, so the queue bound
    /// can be observed deterministically.
    convenience init(_ configuration: AuditSinkConfiguration, clock: @escaping @Sendable () -> Int64, paused: Bool) throws(AuditLogError) {
        try self.init(configuration, clock: clock, onError: { _ in }, paused: paused)
    }

    func startWriter() {
        guard let writer = pendingWriter.withLock({ pending in defer { pending = nil }; return pending }) else { return }
        let thread = Thread { [self] in self.runWriter(writer) }
        thread.name = "bastion-audit"
        thread.start()
    }

    /// Queues an event with the current time. Never blocks on IO.
    public func record(_ event: AuditEvent) {
        guard isEnabled else { return }
        let record = AuditRecord(timestamp: clock(), event: event).jsonLine()
        let (signal, lost) = queue.withLock { q -> (Bool, Bool) in
            guard !q.closed else { return (false, false) }
            guard q.items.count < capacity else {
                q.droppedSinceWrite += 1
                return (false, true)
            }
            q.items.append(.record(record))
            return (q.items.count == 1, false)
        }
        if lost { dropped.add(1, ordering: .relaxed) }
        if signal { wake.signal() }
    }

    /// Records lost to a full queue since start (for metrics).
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Records written since start.
    public var writtenCount: Int { written.load(ordering: .relaxed) }

    /// Returns once everything recorded before the call is written.
    public func flush() async {
        guard isEnabled else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let appended = queue.withLock { q -> Bool in
                guard !q.closed else { return false }
                q.items.append(.barrier(continuation))
                return true
            }
            if appended { wake.signal() } else { continuation.resume() }
        }
    }

    /// Writes what is queued, closes the file and stops the writer. Later records are ignored.
    public func close() async {
        guard isEnabled else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let appended = queue.withLock { q -> Bool in
                guard !q.closed else { return false }
                q.items.append(.barrier(continuation))
                q.closed = true
                return true
            }
            if appended { wake.signal() } else { continuation.resume() }
        }
    }

    // MARK: Writer thread

    /// State owned by the writer thread alone (a value copied into it).
    private struct Writer: Sendable {
        var file: AuditFile?
        var stdout: Bool
        var onError: @Sendable (String) -> Void
        var lastError: String?

        mutating func write(_ lines: [[UInt8]]) -> Int {
            guard !lines.isEmpty else { return 0 }
            var ok = 0
            if file != nil {
                do {
                    try file?.append(lines)
                    ok = lines.count
                } catch {
                    report(error.description)
                }
            }
            if stdout {
                var buffer: [UInt8] = []
                for line in lines { buffer.append(contentsOf: line) }
                if let problem = AuditFile.writeAll(fd: 1, buffer) {
                    report("stdout: \(problem)")
                } else if file == nil {
                    ok = lines.count
                }
            }
            return ok
        }

        mutating func report(_ message: String) {
            // One report per distinct problem, not one per record.
            guard message != lastError else { return }
            lastError = message
            onError(message)
        }
    }

    private func runWriter(_ initial: Writer) {
        // A closed stdout pipe must fail the write (EPIPE, reported), not kill the broker:
        // SIGPIPE from write() goes to the writing thread, so blocking it here is enough.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        var writer = initial
        while true {
            wake.wait()
            let (items, droppedNow, closed) = queue.withLock { q in
                let items = q.items
                q.items = []
                let d = q.droppedSinceWrite
                q.droppedSinceWrite = 0
                return (items, d, q.closed)
            }
            var lines: [[UInt8]] = []
            if droppedNow > 0 {
                lines.append(AuditRecord(timestamp: clock(), event: .recordsDropped(count: droppedNow)).jsonLine())
            }
            for item in items {
                switch item {
                case .record(let line):
                    lines.append(line)
                case .barrier(let continuation):
                    written.add(writer.write(lines), ordering: .relaxed)
                    lines = []
                    continuation.resume()
                }
            }
            written.add(writer.write(lines), ordering: .relaxed)
            if closed, queue.withLock({ $0.items.isEmpty }) {
                writer.file?.close()
                return
            }
        }
    }
}
