@testable import BastionNATS
import Foundation
import NIOCore
import Testing

// Opt-in: BASTION_NATS_BENCH=1 swift test --filter PublishBenchmark (a release build gives the
// meaningful figure: swift test -c release ...). Prints messages per second; asserts nothing on time.
@Suite("Publish throughput", .enabled(if: ProcessInfo.processInfo.environment["BASTION_NATS_BENCH"] == "1"))
struct PublishBenchmarkTests {
    @Test func publishThroughput() async throws {
        try await withServer(["--no-jetstream"]) { server in
            try await withConnection(server.configuration()) { nats in
                let count = Int(ProcessInfo.processInfo.environment["BASTION_NATS_BENCH_COUNT"] ?? "") ?? 2_000_000
                let payload = ByteBuffer(repeating: 0x61, count: 128)
                var backPressured = 0
                let clock = ContinuousClock()
                let start = clock.now
                var i = 0
                while i < count {
                    do {
                        try nats.publish("bench.plant.line1.temp", payload: payload)
                        i += 1
                    } catch NATSError.outboundBufferFull {
                        backPressured += 1
                        await Task.yield()
                    }
                }
                try await nats.flush()
                let writes = try await nats.submit { $0.writes }
                let elapsed = clock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let rate = Double(count) / seconds
                print("NATS publish: \(count) × 128 B in \(elapsed): \(Int(rate)) msg/s, \(Int(rate * 128 / 1_000_000)) MB/s payload; back-pressure retries \(backPressured), \(writes) socket writes")
            }
        }
    }
}
