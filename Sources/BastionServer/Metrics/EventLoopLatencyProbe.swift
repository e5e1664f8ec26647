import NIOCore
import Synchronization

/// Measures how late an event loop runs a task it scheduled: a loop busy with long work or a
/// blocking call shows up as latency here before clients notice. Start one per loop; it re-arms
/// itself on its loop until cancelled.
public final class EventLoopLatencyProbe: Sendable {
    private let loop: any EventLoop
    private let interval: TimeAmount
    private let record: @Sendable (Duration) -> Void
    private let task: NIOLoopBoundBox<Scheduled<Void>?>
    private let cancelled = Atomic(false)

    /// Starts probing `loop` every `interval`, handing each delay to `record`.
    public static func start(on loop: any EventLoop, every interval: TimeAmount = .seconds(1),
                             record: @escaping @Sendable (Duration) -> Void) -> EventLoopLatencyProbe {
        let probe = EventLoopLatencyProbe(loop: loop, interval: interval, record: record)
        loop.execute { probe.arm() }
        return probe
    }

    /// Starts one probe per loop of `group`, recording into `metrics`.
    public static func start(group: any EventLoopGroup, every interval: TimeAmount = .seconds(1),
                             metrics: BrokerMetrics) -> [EventLoopLatencyProbe] {
        group.makeIterator().map { loop in start(on: loop, every: interval) { metrics.eventLoopLatency($0) } }
    }

    private init(loop: any EventLoop, interval: TimeAmount, record: @escaping @Sendable (Duration) -> Void) {
        self.loop = loop
        self.interval = interval
        self.record = record
        self.task = NIOLoopBoundBox.makeEmptyBox(valueType: Scheduled<Void>.self, eventLoop: loop)
    }

    private func arm() {
        guard !cancelled.load(ordering: .relaxed) else { return }
        let due = loop.now + interval
        task.value = loop.scheduleTask(deadline: due) { [self] in
            let late = loop.now - due
            record(.nanoseconds(max(0, late.nanoseconds)))
            arm()
        }
    }

    /// Stops the probe (safe from any thread).
    public func cancel() {
        cancelled.store(true, ordering: .relaxed)
        loop.execute { [self] in
            task.value?.cancel()
            task.value = nil
        }
    }
}
