import BastionCore
import BastionStore
import Foundation
import Testing
import BastionTesting

/// Durable commit throughput, run by hand (numbers go to docs/persistence.md):
///
///     BASTION_STORE_BENCH=1 swift test -c release --filter StoreThroughputBenchmark
///
/// `BASTION_STORE_BENCH_DIR` chooses the file system (default: the temporary directory),
/// `BASTION_STORE_BENCH_SECONDS` the duration of each run (3), `BASTION_STORE_BENCH_CONFIGS` a
/// comma-separated subset of memory,strict,relaxed,strict+2ms. Each
/// simulated message is what the broker does for a QoS 1 message to one persistent session:
/// `putMessage`+`enqueue` (awaited: the PUBACK to the publisher waits for it), `assignPacketID`
/// (not awaited), `dequeue` (awaited: the subscriber's PUBACK). Prints; asserts nothing on time.
@Suite("StoreThroughputBenchmark", .enabled(if: ProcessInfo.processInfo.environment["BASTION_STORE_BENCH"] == "1"), .serialized)
struct StoreThroughputBenchmark {
    static let seconds = Double(ProcessInfo.processInfo.environment["BASTION_STORE_BENCH_SECONDS"] ?? "") ?? 3
    static let configurations = ProcessInfo.processInfo.environment["BASTION_STORE_BENCH_CONFIGS"]?
        .split(separator: ",").map(String.init) ?? ["memory", "strict", "relaxed", "strict+2ms"]

    @Test("enqueue+dequeue pairs per second", arguments: [1, 16, 128, 512])
    func throughput(concurrency: Int) async throws {
        for payloadSize in [64, 1024] {
            for configuration in Self.configurations {
                try await measure(configuration, concurrency: concurrency, payloadSize: payloadSize)
            }
        }
    }

    private func measure(_ configuration: String, concurrency: Int, payloadSize: Int) async throws {
        let base = ProcessInfo.processInfo.environment["BASTION_STORE_BENCH_DIR"].map { $0 + "/bench-\(UUID().uuidString)" }
        let directory = try TemporaryDirectory()
        let path = base ?? directory.path
        defer { if let base { try? FileManager.default.removeItem(atPath: base) } }

        let store: any DurableStore
        switch configuration {
        case "memory": store = InMemoryStore()
        case "strict": store = try SQLiteStore(options: .init(directory: path))
        case "relaxed": store = try SQLiteStore(options: .init(directory: path, durability: .relaxed, fsyncInterval: .milliseconds(1000)))
        default: store = try SQLiteStore(options: .init(directory: path, batchDelay: .milliseconds(2), batchTarget: concurrency * 2))
        }
        defer { store.close() }
        _ = await store.submitAndWait((0..<concurrency).map { .saveSession(Sample.session("c\($0)")) })

        let payload = String(repeating: "x", count: payloadSize)
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(Self.seconds * 1000))
        let start = clock.now
        let before = (store as? SQLiteStore)?.statistics
        let messages = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    let clientID = "c\(worker)"
                    var count = 0
                    var id = MessageID(worker) << 32
                    while clock.now < deadline {
                        id += 1
                        let message = Sample.message(id, payload: payload)
                        guard case .success = await store.submitAndWait([
                            .putMessage(message), .enqueue(clientID: clientID, delivery: Sample.delivery(id)),
                        ]) else { break }
                        store.submit([.assignPacketID(clientID: clientID, messageID: id, packetID: UInt16(truncatingIfNeeded: id) | 1)]) { _ in }
                        guard case .success = await store.submitAndWait([.dequeue(clientID: clientID, messageID: id)]) else { break }
                        count += 1
                    }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var line = "store-bench config=\(configuration) concurrency=\(concurrency) payload=\(payloadSize)B "
            + "messages/s=\(Int(Double(messages) / seconds))"
        if let before, let after = (store as? SQLiteStore)?.statistics {
            let commits = after.commits - before.commits
            let submissions = after.committedSubmissions - before.committedSubmissions
            line += " commits/s=\(Int(Double(commits) / seconds)) submissions/commit=\(commits > 0 ? submissions / commits : 0)"
        }
        print(line)
    }
}
