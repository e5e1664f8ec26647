import NIOCore
import Synchronization

/// Run-wide counters for end-to-end flow control: deliveries the publishers have caused and
/// deliveries the subscribers have seen. Updated once per burst, not per message.
final class BacklogCounters: Sendable {
    let expected = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)

    var backlog: Int { expected.load(ordering: .relaxed) - delivered.load(ordering: .relaxed) }
}

/// Everything the generator keeps per event loop: the clients living on it, their counters and
/// one pacing timer that drives all its publishers. Only ever touched on its own loop (the
/// runner reaches it through `NIOLoopBound`), so the hot path takes no lock.
final class LoopState {
    let eventLoop: any EventLoop
    let backlog: BacklogCounters
    var stats = BenchStats()
    var window: MeasurementWindow?
    var clients: [BenchClientHandler] = []
    var publishers: [BenchClientHandler] = []
    /// Set once the run is over, so the generator's own disconnects are not counted as errors.
    var closing = false
    private var ticker: RepeatedTask?
    private var pinger: RepeatedTask?

    /// Pacing granularity: publishers are topped up to their schedule this often.
    static let tick = TimeAmount.milliseconds(1)

    init(eventLoop: any EventLoop, backlog: BacklogCounters) {
        self.eventLoop = eventLoop
        self.backlog = backlog
    }

    func register(_ client: BenchClientHandler) {
        clients.append(client)
        if client.isPublisher { publishers.append(client) }
    }

    func unregister(_ client: BenchClientHandler) {
        clients.removeAll { $0 === client }
        publishers.removeAll { $0 === client }
    }

    /// Opens the run: publishers start on their (staggered) schedules.
    func start(window: MeasurementWindow, ratePerPublisher: Double?, publisherCount: Int) {
        self.window = window
        for publisher in publishers {
            let start = PublishSchedule.staggeredStart(
                base: window.publishStart, index: publisher.publisherIndex, of: publisherCount, rate: ratePerPublisher)
            publisher.startPublishing(schedule: PublishSchedule(startNanos: start, rate: ratePerPublisher))
        }
        if !publishers.isEmpty {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            ticker = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.tick) { _ in
                bound.value.tick()
            }
        }
    }

    private func tick() {
        let now = NIODeadline.now().uptimeNanoseconds
        for publisher in publishers { publisher.pump(now: now) }
        if let window, now >= window.measureEnd { ticker?.cancel() }
    }

    /// Keeps idle connections alive: one PINGREQ per client every half keep-alive.
    func startPinging(keepAlive: UInt16) {
        guard keepAlive > 0 else { return }
        let interval = TimeAmount.milliseconds(Int64(keepAlive) * 500)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        pinger = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            for client in bound.value.clients { client.ping() }
        }
    }

    func snapshot() -> BenchStats {
        var copy = stats
        copy.inFlight = publishers.reduce(0) { $0 + $1.inFlight }
        return copy
    }

    /// Ends the run: DISCONNECT and close every client.
    func closeAll() {
        closing = true
        ticker?.cancel()
        pinger?.cancel()
        for client in clients { client.disconnect() }
    }
}

/// The few counters the runner polls while draining; cheap to copy across loops.
struct BenchProgress: Sendable {
    var sent = 0
    var received = 0
    var inFlight = 0

    mutating func add(_ other: BenchProgress) {
        sent += other.sent
        received += other.received
        inFlight += other.inFlight
    }
}

extension LoopState {
    func progress() -> BenchProgress {
        BenchProgress(sent: stats.sent, received: stats.received, inFlight: publishers.reduce(0) { $0 + $1.inFlight })
    }
}
