import NIOCore
import NIOPosix
import NIOSSL

/// Runs one scenario: connect every client (paced), open the measurement window, let the
/// publishers run, drain what is still in flight, then merge the per-loop counters into a report.
public struct BenchRunner {
    let config: BenchConfiguration

    public init(config: BenchConfiguration) {
        self.config = config
    }

    public func run() async throws -> BenchReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.threads))
        do {
            let report = try await run(on: group)
            try await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    private static func sleep(until deadline: UInt64) async throws {
        let now = Self.now()
        if deadline > now { try await Task.sleep(nanoseconds: deadline - now) }
    }

    private func run(on group: MultiThreadedEventLoopGroup) async throws -> BenchReport {
        let loops: [any EventLoop] = Array(group.makeIterator())
        let backlog = BacklogCounters()
        var states: [NIOLoopBound<LoopState>] = []
        for loop in loops {
            states.append(try await loop.submit { NIOLoopBound(LoopState(eventLoop: loop, backlog: backlog), eventLoop: loop) }.get())
        }
        let plan = ScenarioPlan(config)
        var settings = BenchClientSettings(
            version: config.version, qos: config.qos, payloadSize: config.payloadSize, keepAlive: config.keepAlive,
            username: config.username, password: config.password, inflight: config.inflight)
        settings.persistentSessions = config.persistentSessions
        settings.sparkplug = config.sparkplug
        // End-to-end flow control only where the generator sees both ends.
        let backlogBound = config.maxBacklog ?? BenchConfiguration.defaultBacklog(subscribers: plan.subscriberCount)
        if config.scenario.isSelfContained, backlogBound > 0, let perMessage = plan.deliveriesPerMessage {
            settings.deliveriesPerMessage = perMessage
            settings.maxBacklog = max(backlogBound, perMessage)
        }
        let ssl = try config.tls.map { try BenchTLS.makeContext($0) }
        let serverName = config.tls.flatMap { BenchTLS.serverName($0, host: config.host) }

        let brokerBaseline = config.brokerPID.flatMap { ProcessSample.read(pid: $0) }

        // Connect, paced at --connect-rate, spreading clients over the loops round-robin.
        var readies: [EventLoopFuture<Void>] = []
        readies.reserveCapacity(plan.clients.count)
        let connectStart = Self.now()
        for (i, spec) in plan.clients.enumerated() {
            let due = connectStart + UInt64(Double(i) / max(config.connectRate, 1) * 1e9)
            if due > Self.now() + 1_000_000 { try await Self.sleep(until: due) }
            let index = i % loops.count
            readies.append(connect(spec, loop: loops[index], state: states[index], settings: settings, ssl: ssl, serverName: serverName))
        }
        var connectFailures: [String: Int] = [:]
        var readyCount = 0
        for ready in readies {
            do {
                try await ready.get()
                readyCount += 1
            } catch {
                connectFailures["\(error)", default: 0] += 1
            }
        }

        // The window: publishers start together, warm up, then are measured for --duration.
        let warmup = config.scenario == .conn ? 0 : UInt64(config.warmupSeconds * 1e9)
        let window = MeasurementWindow(
            publishStart: Self.now() + 10_000_000, warmupNanos: warmup, durationNanos: UInt64(config.durationSeconds * 1e9))
        let publisherCount = plan.publisherCount
        let ratePerPublisher = config.rate.map { $0 / Double(max(publisherCount, 1)) }
        let keepAlive = config.keepAlive
        for state in states {
            try await state.eventLoop.submit {
                state.value.start(window: window, ratePerPublisher: ratePerPublisher, publisherCount: publisherCount)
                state.value.startPinging(keepAlive: keepAlive)
            }.get()
        }

        try await Self.sleep(until: window.measureStart)
        let brokerAtStart = config.brokerPID.flatMap { ProcessSample.read(pid: $0) }
        let selfAtStart = ProcessSample.readSelf()
        try await Self.sleep(until: window.measureEnd)
        let brokerAtEnd = config.brokerPID.flatMap { ProcessSample.read(pid: $0) }
        let selfAtEnd = ProcessSample.readSelf()

        // Drain: give messages sent inside the window time to arrive and be acknowledged.
        let drainDeadline = window.measureEnd + UInt64(config.drainSeconds * 1e9)
        while Self.now() < drainDeadline {
            var progress = BenchProgress()
            for state in states {
                progress.add(try await state.eventLoop.submit { state.value.progress() }.get())
            }
            if isDrained(progress, plan: plan) { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }

        var stats = BenchStats()
        for state in states {
            stats.merge(try await state.eventLoop.submit { state.value.snapshot() }.get())
        }
        for state in states {
            try await state.eventLoop.submit { state.value.closeAll() }.get()
        }
        // Let DISCONNECTs reach the broker before the loops shut down.
        try await Task.sleep(nanoseconds: 200_000_000)

        return makeReport(
            maxBacklog: settings.maxBacklog, stats: stats, plan: plan, window: window, readyCount: readyCount, connectFailures: connectFailures,
            brokerBaseline: brokerBaseline, brokerAtStart: brokerAtStart, brokerAtEnd: brokerAtEnd,
            selfAtStart: selfAtStart, selfAtEnd: selfAtEnd)
    }

    private func isDrained(_ progress: BenchProgress, plan: ScenarioPlan) -> Bool {
        guard progress.inFlight == 0 else { return false }
        if let perMessage = plan.deliveriesPerMessage, plan.subscriberCount > 0, plan.publisherCount > 0 {
            return progress.received >= progress.sent * perMessage
        }
        return true
    }

    private func connect(
        _ spec: BenchClientSpec, loop: any EventLoop, state: NIOLoopBound<LoopState>, settings: BenchClientSettings,
        ssl: NIOSSLContext?, serverName: String?
    ) -> EventLoopFuture<Void> {
        let ready = loop.makePromise(of: Void.self)
        let startedAt = Self.now()
        let timeout = loop.scheduleTask(in: .seconds(30)) { ready.fail(BenchClientError.connectTimeout) }
        ready.futureResult.whenComplete { _ in timeout.cancel() }
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let ssl {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: ssl, serverHostname: serverName))
                    }
                    let handler = BenchClientHandler(
                        spec: spec, settings: settings, state: state.value, connectStartedAt: startedAt, ready: ready)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: config.host, port: config.port)
            .whenFailure { ready.fail($0) }
        return ready.futureResult
    }

    private func makeReport(
        maxBacklog: Int?, stats: BenchStats, plan: ScenarioPlan, window: MeasurementWindow, readyCount: Int, connectFailures: [String: Int],
        brokerBaseline: ProcessSample?, brokerAtStart: ProcessSample?, brokerAtEnd: ProcessSample?,
        selfAtStart: ProcessSample?, selfAtEnd: ProcessSample?
    ) -> BenchReport {
        let seconds = window.durationSeconds
        var expected: Int?
        var missing: Int?
        if let perMessage = plan.deliveriesPerMessage, plan.subscriberCount > 0, plan.publisherCount > 0 {
            expected = stats.sent * perMessage
            missing = max(0, stats.sent * perMessage - stats.received)
        }
        var errors = stats.errors
        errors.merge(connectFailures, uniquingKeysWith: +)

        var resources = BenchReport.Resources(brokerPID: config.brokerPID)
        if let before = brokerBaseline, let after = brokerAtEnd {
            resources.brokerRSSBeforeKiB = before.rssKiB
            resources.brokerRSSAfterKiB = after.rssKiB
            if readyCount > 0 { resources.brokerRSSPerConnectionKiB = Double(after.rssKiB - before.rssKiB) / Double(readyCount) }
        }
        if let start = brokerAtStart, let end = brokerAtEnd { resources.brokerCPU = (end.cpuSeconds - start.cpuSeconds) / seconds }
        if let start = selfAtStart, let end = selfAtEnd { resources.generatorCPU = (end.cpuSeconds - start.cpuSeconds) / seconds }

        return BenchReport(
            setup: .init(
                scenario: config.scenario.rawValue, broker: "\(config.host):\(config.port)", tls: config.tls != nil,
                mqtt: config.version.description, qos: Int(config.qos.rawValue), payloadBytes: max(config.payloadSize, BenchWire.minimumPayloadSize),
                publishers: plan.publisherCount, subscribers: plan.subscriberCount, connections: plan.clients.count,
                targetRate: config.rate, inflight: config.inflight, maxBacklog: maxBacklog, durationSeconds: config.durationSeconds,
                warmupSeconds: config.scenario == .conn ? 0 : config.warmupSeconds, threads: config.threads),
            messages: .init(
                sent: stats.sent, sentInWindow: stats.sentInWindow, sentPerSecond: Double(stats.sentInWindow) / seconds,
                received: stats.received, receivedInWindow: stats.receivedInWindow,
                receivedPerSecond: Double(stats.receivedInWindow) / seconds,
                acknowledged: stats.acknowledged, expected: expected, missing: missing, unacknowledged: stats.inFlight),
            latencyMicros: LatencySummary(stats.latency),
            connections: .init(
                attempted: plan.clients.count, connected: readyCount, failed: plan.clients.count - readyCount,
                setupMillis: LatencySummary(stats.connectTime, unitNanos: 1_000_000)),
            resources: resources,
            errors: errors,
            errorCount: errors.values.reduce(0, +))
    }
}
