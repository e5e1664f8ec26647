import BastionCore
import BastionStore
import Dispatch
import Foundation
import MQTTCodec
import Testing
import BastionTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("SQLiteStore")
struct SQLiteStoreTests {
    let now = Date().timeIntervalSince1970

    // MARK: Group commit

    @Test("submissions queued during a commit share the next transaction")
    func groupCommit() async throws {
        let h = try StoreHarness(.sqlite)
        let store = try #require(h.sqlite)
        let submitters = 40
        let perSubmitter = 25
        try await h.commit((0..<submitters).map { .saveSession(Sample.session("c\($0)")) })
        let before = store.statistics

        // Hold the writer inside a completion so that everything below queues up behind it.
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        store.submit([.saveSession(Sample.session("gate"))]) { _ in
            entered.signal()
            release.wait()
        }
        entered.wait()

        let log = CompletionLog()
        let remaining = AtomicCounter(submitters * perSubmitter)
        let allDone = DispatchSemaphore(value: 0)
        await withTaskGroup(of: Void.self) { group in
            for s in 0..<submitters {
                group.addTask {
                    for i in 0..<perSubmitter {
                        let id = MessageID(s * 1000 + i + 1)
                        store.submit([.putMessage(Sample.message(id)), .enqueue(clientID: "c\(s)", delivery: Sample.delivery(id))]) {
                            log.record(Int(id), $0)
                            if remaining.decrement() == 0 { allDone.signal() }
                        }
                    }
                }
            }
        }
        release.signal()
        allDone.wait()

        #expect(log.count == submitters * perSubmitter)
        #expect(log.failures.isEmpty)
        let after = store.statistics
        // The gate's transaction, then one for all 1,000 submissions.
        #expect(after.commits - before.commits == 2)
        #expect(after.committedSubmissions - before.committedSubmissions == submitters * perSubmitter + 1)

        let state = try h.reload(now: now)
        for s in 0..<submitters {
            let queue = state.sessions.first { $0.record.clientID == "c\(s)" }?.deliveries.map(\.messageID)
            #expect(queue == (0..<perSubmitter).map { MessageID(s * 1000 + $0 + 1) })
        }
    }

    @Test("a backlog larger than maxBatchOperations is committed in several transactions, in order")
    func batchLimit() async throws {
        let h = try StoreHarness(.sqlite) { SQLiteStore.Options(directory: $0, maxBatchOperations: 100) }
        let store = try #require(h.sqlite)
        try await h.commit([.saveSession(Sample.session("c"))])
        let before = store.statistics
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        store.submit([.saveSession(Sample.session("gate"))]) { _ in
            entered.signal()
            release.wait()
        }
        entered.wait()
        let log = CompletionLog()
        let remaining = AtomicCounter(1000)
        let allDone = DispatchSemaphore(value: 0)
        for i in 1...1000 {
            let id = MessageID(i)
            store.submit([.putMessage(Sample.message(id)), .enqueue(clientID: "c", delivery: Sample.delivery(id))]) {
                log.record(i, $0)
                if remaining.decrement() == 0 { allDone.signal() }
            }
        }
        release.signal()
        allDone.wait()
        #expect(log.failures.isEmpty)
        // The gate, then 2,000 operations in transactions of at most 100.
        #expect(store.statistics.commits - before.commits == 1 + 20)
        let queue = try h.reload(now: now).sessions.first { $0.record.clientID == "c" }?.deliveries.map(\.messageID)
        #expect(queue == (1...1000).map { MessageID($0) })
    }

    @Test("close() and flush() called from a completion do not wait for themselves")
    func reentrantCalls() async throws {
        let h = try StoreHarness(.sqlite)
        let store = try #require(h.sqlite)
        let done = DispatchSemaphore(value: 0)
        store.submit([.saveSession(Sample.session("c"))]) { _ in
            store.flush()
            store.close()
            done.signal()
        }
        done.wait()
        guard case .failure(.io) = await store.submitAndWait([.saveSession(Sample.session("d"))]) else {
            Issue.record("a closed store must refuse submissions")
            return
        }
        // The directory is released once the writer has finished.
        var reopened: SQLiteStore?
        for _ in 0..<500 where reopened == nil {
            reopened = try? SQLiteStore(options: h.options)
            if reopened == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let again = try #require(reopened)
        defer { again.close() }
        #expect(try again.load(now: now).sessions.map(\.record.clientID) == ["c"])
    }

    @Test("many concurrent submitters all complete, in fewer transactions than submissions")
    func concurrentSubmitters() async throws {
        let h = try StoreHarness(.sqlite)
        let store = try #require(h.sqlite)
        try await h.commit([.saveSession(Sample.session("c"))])
        let before = store.statistics
        let tasks = 64
        let rounds = 20
        let failures = await withTaskGroup(of: Int.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var failures = 0
                    for r in 0..<rounds {
                        let id = MessageID(t * rounds + r + 1)
                        let enqueued = await store.submitAndWait([
                            .putMessage(Sample.message(id)), .enqueue(clientID: "c", delivery: Sample.delivery(id)),
                        ])
                        let dequeued = await store.submitAndWait([.dequeue(clientID: "c", messageID: id)])
                        if case .failure = enqueued { failures += 1 }
                        if case .failure = dequeued { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        let after = store.statistics
        let submissions = tasks * rounds * 2
        #expect(after.committedSubmissions - before.committedSubmissions == submissions)
        #expect(after.commits - before.commits < submissions)
        #expect(after.collectedBodies - before.collectedBodies == tasks * rounds)
        #expect(try store.storedMessageCount() == 0)
    }

    @Test("load commits what was submitted before it")
    func loadFlushesPendingSubmissions() throws {
        let h = try StoreHarness(.sqlite)
        h.store.submit([.saveSession(Sample.session("c"))]) { _ in }
        #expect(try h.store.load(now: now).sessions.map(\.record.clientID) == ["c"])
    }

    @Test("relaxed durability commits and fsyncs on its interval", arguments: [Duration.zero, .milliseconds(2)])
    func relaxedDurability(batchDelay: Duration) async throws {
        let h = try StoreHarness(.sqlite) {
            SQLiteStore.Options(directory: $0, durability: .relaxed, fsyncInterval: .milliseconds(20), batchDelay: batchDelay, batchTarget: 8)
        }
        let store = try #require(h.sqlite)
        try await h.commit([
            .saveSession(Sample.session("c")), .putMessage(Sample.message(1)), .enqueue(clientID: "c", delivery: Sample.delivery(1)),
        ])
        // Waits (bounded) for the periodic fsync; not a timing assertion.
        for _ in 0..<500 where store.statistics.periodicSyncs == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(store.statistics.periodicSyncs >= 1)
        #expect(try h.reload(now: now).sessions.first?.deliveries.map(\.messageID) == [1])
    }

    // MARK: Crash recovery

    @Test("a copy of the files taken while the store is open (as after kill -9) opens with every acknowledged commit")
    func recoveryAfterUncleanStop() async throws {
        let h = try StoreHarness(.sqlite)
        try await h.commit([.saveSession(Sample.session("c", subscriptions: Sample.subscriptions))])
        for id: MessageID in 1...50 {
            try await h.commit([.putMessage(Sample.message(id)), .enqueue(clientID: "c", delivery: Sample.delivery(id))])
        }
        try await h.commit([.dequeue(clientID: "c", messageID: 1), .setRetained(Sample.message(99, topic: "r", retain: true))])

        // The store is open and idle: its files are exactly what a killed process leaves.
        let crashed = try TemporaryDirectory()
        let source = h.options.directory
        for suffix in ["", "-wal", "-shm"] {
            try FileManager.default.copyItem(atPath: "\(source)/bastion.sqlite3\(suffix)", toPath: "\(crashed.path)/bastion.sqlite3\(suffix)")
        }
        let walSize = try FileManager.default.attributesOfItem(atPath: "\(crashed.path)/bastion.sqlite3-wal")[.size] as? Int
        #expect((walSize ?? 0) > 0, "the commits are still only in the WAL, so recovery reads it")

        let recovered = try SQLiteStore(options: SQLiteStore.Options(directory: crashed.path))
        defer { recovered.close() }
        let state = try recovered.load(now: now)
        #expect(state.sessions.first?.record.subscriptions == Sample.subscriptions)
        #expect(state.sessions.first?.deliveries.map(\.messageID) == Array(2...50))
        #expect(state.retained.map(\.id) == [99])
        #expect(try recovered.integrityProblems().isEmpty)
        // And it keeps working.
        #expect(await recovered.submitAndWait([.dequeue(clientID: "c", messageID: 2)]).isSuccess)
    }

    @Test("a store dropped without close() releases the directory once its writer finishes")
    func droppedWithoutClose() async throws {
        let directory = try TemporaryDirectory()
        let options = SQLiteStore.Options(directory: directory.path)
        do {
            let store = try SQLiteStore(options: options)
            #expect(await store.submitAndWait([.saveSession(Sample.session("c"))]).isSuccess)
        }
        var reopened: SQLiteStore?
        for _ in 0..<500 where reopened == nil {
            reopened = try? SQLiteStore(options: options)
            if reopened == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let store = try #require(reopened)
        defer { store.close() }
        #expect(try store.load(now: now).sessions.map(\.record.clientID) == ["c"])
    }

    // MARK: Opening

    @Test("the data directory is created 0700 and the database files 0600")
    func fileModes() async throws {
        let base = try TemporaryDirectory()
        let directory = base.path + "/nested/data"
        let store = try SQLiteStore(options: SQLiteStore.Options(directory: directory))
        defer { store.close() }
        #expect(await store.submitAndWait([.saveSession(Sample.session("c"))]).isSuccess)
        #expect(try mode(directory) == 0o700)
        #expect(try mode(directory + "/bastion.sqlite3") == 0o600)
        #expect(try mode(directory + "/bastion.sqlite3-wal") == 0o600)
    }

    @Test("a file that is not a database makes the directory unusable")
    func corruptFile() throws {
        let directory = try TemporaryDirectory()
        let garbage = Data(repeating: 0x5A, count: 64 * 1024)
        try garbage.write(to: URL(fileURLWithPath: directory.path + "/bastion.sqlite3"))
        expectUnusable(try SQLiteStore(options: SQLiteStore.Options(directory: directory.path)), mentioning: "bastion.sqlite3")
    }

    @Test("a damaged page is reported as unusable, not a crash")
    func damagedPages() async throws {
        let directory = try TemporaryDirectory()
        let options = SQLiteStore.Options(directory: directory.path)
        do {
            let store = try SQLiteStore(options: options)
            _ = await store.submitAndWait([.saveSession(Sample.session("c"))] + (1...200).flatMap { id -> [StoreOperation] in
                [.putMessage(Sample.message(MessageID(id), payload: String(repeating: "x", count: 500))),
                 .enqueue(clientID: "c", delivery: Sample.delivery(MessageID(id)))]
            })
            store.close()
        }
        // Overwrite everything after the first page (the schema stays readable, the tables not).
        let path = directory.path + "/bastion.sqlite3"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.count > 8192)
        for i in 4096..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: URL(fileURLWithPath: path))

        let opened = Result { () throws(StoreError) in try SQLiteStore(options: options) }
        switch opened {
        case .failure(let error):
            guard case .unusable = error else { Issue.record("expected .unusable, got \(error)"); return }
        case .success(let store):
            defer { store.close() }
            #expect(throws: StoreError.self) { try store.load(now: now) }
        }
    }

    @Test("a data directory below a regular file is unusable")
    func directoryBelowAFile() throws {
        let base = try TemporaryDirectory()
        try Data("x".utf8).write(to: URL(fileURLWithPath: base.path + "/file"))
        expectUnusable(try SQLiteStore(options: SQLiteStore.Options(directory: base.path + "/file/data")), mentioning: "file/data")
        expectUnusable(try SQLiteStore(options: SQLiteStore.Options(directory: base.path + "/file")), mentioning: "not a directory")
    }

    @Test("a directory without write permission is unusable (non-root only: root ignores modes)")
    func readOnlyPermissions() throws {
        guard geteuid() != 0 else { try Test.cancel("running as root, which bypasses permission bits") }
        let base = try TemporaryDirectory()
        let directory = base.path + "/data"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o500])
        defer { chmod(directory, 0o700) }
        expectUnusable(try SQLiteStore(options: SQLiteStore.Options(directory: directory)), mentioning: directory)
    }

    @Test("a read-only file system is unusable, with or without an existing database")
    func readOnlyMount() async throws {
        let base = try TemporaryDirectory()
        let mountPoint = base.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        guard run("/bin/mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", mountPoint) else {
            try Test.cancel("cannot mount a tmpfs here (needs root)")
        }
        defer { _ = run("/bin/umount", "-l", mountPoint) }
        let options = SQLiteStore.Options(directory: mountPoint + "/data")
        do {
            let store = try SQLiteStore(options: options)
            #expect(await store.submitAndWait([.saveSession(Sample.session("c"))]).isSuccess)
            store.close()
        }
        #expect(run("/bin/mount", "-o", "remount,ro", mountPoint))
        expectUnusable(try SQLiteStore(options: options), mentioning: mountPoint)
        expectUnusable(try SQLiteStore(options: SQLiteStore.Options(directory: mountPoint + "/other")), mentioning: mountPoint)
    }

    @Test("a second store on the same directory is refused while the first is open")
    func exclusiveDirectory() throws {
        let directory = try TemporaryDirectory()
        let options = SQLiteStore.Options(directory: directory.path)
        let first = try SQLiteStore(options: options)
        expectUnusable(try SQLiteStore(options: options), mentioning: "another broker")
        first.close()
        let second = try SQLiteStore(options: options)
        second.close()
    }

    @Test("a database written by a newer schema is refused")
    func newerSchema() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") else {
            try Test.cancel("the sqlite3 command is not installed")
        }
        let directory = try TemporaryDirectory()
        let options = SQLiteStore.Options(directory: directory.path)
        try SQLiteStore(options: options).close()
        #expect(run("/usr/bin/sqlite3", directory.path + "/bastion.sqlite3", "INSERT INTO grdb_migrations VALUES ('v999-future')"))
        expectUnusable(try SQLiteStore(options: options), mentioning: "newer version")
    }

    // MARK: Helpers

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
    }

    private func expectUnusable(
        _ open: @autoclosure () throws(StoreError) -> SQLiteStore, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let store = try open()
            store.close()
            Issue.record("opened, expected .unusable", sourceLocation: sourceLocation)
        } catch {
            guard case .unusable(let message) = error else {
                Issue.record("expected .unusable, got \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(message.contains(text), "\(message)", sourceLocation: sourceLocation)
        }
    }
}

/// Runs a command quietly; true when it exits 0.
func run(_ executable: String, _ arguments: String...) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch {
        return false
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
