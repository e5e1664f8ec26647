import BastionCore
import BastionStore
import Foundation
import MQTTCodec
import Testing
import BastionTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the store on a small tmpfs (needs root to mount; cancelled otherwise), fills it, and
/// checks the promise: failing commits report `.diskFull`, nothing is half-written, the store
/// keeps answering, and it recovers by itself once space is freed.
@Suite("SQLiteStore on a full disk", .serialized)
struct DiskFullTests {
    @Test("a full disk fails commits with .diskFull, corrupts nothing and recovers when space returns")
    func diskFull() async throws {
        let base = try TemporaryDirectory()
        let mountPoint = base.path + "/mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        guard run("/bin/mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint) else {
            try Test.cancel("cannot mount a tmpfs here (needs root)")
        }
        defer { _ = run("/bin/umount", "-l", mountPoint) }

        let options = SQLiteStore.Options(directory: mountPoint + "/data", retryInterval: .milliseconds(20))
        var store = try SQLiteStore(options: options)
        defer { store.close() }
        #expect(await store.submitAndWait([.saveSession(Sample.session("c"))]).isSuccess)

        // Leave about 400 KiB free.
        let filler = mountPoint + "/filler"
        var info = statvfs()
        #expect(statvfs(mountPoint, &info) == 0)
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: max(0, free - 400 * 1024))))

        let body = String(repeating: "p", count: 16 * 1024)
        var acknowledged: [MessageID] = []
        var failure: StoreError?
        for id: MessageID in 1...200 {
            let result = await store.submitAndWait([
                .putMessage(Sample.message(id, payload: body)), .enqueue(clientID: "c", delivery: Sample.delivery(id)),
            ])
            switch result {
            case .success: acknowledged.append(id)
            case .failure(let error): failure = error
            }
            if failure != nil { break }
        }
        guard case .diskFull = try #require(failure) else {
            Issue.record("expected .diskFull, got \(String(describing: failure))")
            return
        }
        #expect(!acknowledged.isEmpty)
        #expect(!store.isHealthy)
        guard case .diskFull = store.health.lastError else {
            Issue.record("health should report the disk-full error: \(store.health)")
            return
        }

        // It keeps answering: later submissions complete (with the error) instead of hanging.
        let refused = await store.submitAndWait([
            .putMessage(Sample.message(500, payload: body)), .enqueue(clientID: "c", delivery: Sample.delivery(500)),
        ])
        #expect(!refused.isSuccess)
        #expect(try store.integrityProblems().isEmpty)

        // Free the space: the retry probe brings health back without any submission.
        try FileManager.default.removeItem(atPath: filler)
        for _ in 0..<500 where !store.isHealthy {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(store.isHealthy)
        #expect(await store.submitAndWait([
            .putMessage(Sample.message(1000, payload: body)), .enqueue(clientID: "c", delivery: Sample.delivery(1000)),
        ]).isSuccess)
        #expect(store.statistics.failedCommits >= 2)

        // Every acknowledged message is there, none of the refused ones.
        store.close()
        store = try SQLiteStore(options: options)
        let state = try store.load(now: Date().timeIntervalSince1970)
        #expect(state.sessions.first?.deliveries.map(\.messageID) == acknowledged + [1000])
        #expect(try store.integrityProblems().isEmpty)
    }
}
