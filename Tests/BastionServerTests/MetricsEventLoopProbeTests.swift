import BastionServer
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@Suite struct MetricsEventLoopProbeTests {
    final class Samples: Sendable {
        let count = Mutex(0)
    }

    @Test func samplesEveryIntervalUntilCancelled() {
        let loop = EmbeddedEventLoop()
        let samples = Samples()
        let probe = EventLoopLatencyProbe.start(on: loop, every: .seconds(1)) { delay in
            #expect(delay >= .zero)
            samples.count.withLock { $0 += 1 }
        }
        loop.run()
        loop.advanceTime(by: .seconds(3))
        #expect(samples.count.withLock { $0 } == 3)
        probe.cancel()
        loop.run()
        loop.advanceTime(by: .seconds(5))
        #expect(samples.count.withLock { $0 } == 3)
    }
}
