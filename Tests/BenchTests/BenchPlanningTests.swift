@testable import BastionBench
import Histogram
import MQTTCodec
import Testing

@Suite struct PacketIDPoolTests {
    @Test func handsOutEachIdentifierOnceUntilReleased() {
        var pool = PacketIDPool(capacity: 3)
        let ids = [pool.acquire(), pool.acquire(), pool.acquire()]
        #expect(ids == [1, 2, 3])
        let overflow = pool.acquire()
        #expect(overflow == nil)
        #expect(pool.inFlight == 3)
        let first = pool.release(2)
        let second = pool.release(2)
        #expect(first)
        #expect(!second, "a second ack for the same identifier is unexpected")
        let reused = pool.acquire()
        #expect(reused == 2)
    }

    @Test func rejectsIdentifiersItNeverHandedOut() {
        var pool = PacketIDPool(capacity: 2)
        let results = [pool.release(0), pool.release(1), pool.release(60000)]
        #expect(results == [false, false, false])
    }

    @Test func capacityIsClampedToValidIdentifiers() {
        #expect(PacketIDPool(capacity: 0).capacity == 1)
        #expect(PacketIDPool(capacity: 1_000_000).capacity == 65535)
    }
}

@Suite struct PublishScheduleTests {
    @Test func pacedScheduleReleasesMessagesAtTheRate() {
        let schedule = PublishSchedule(startNanos: 1_000_000_000, rate: 1000)
        #expect(schedule.expected(at: 999_999_999) == 0)
        #expect(schedule.expected(at: 1_000_000_000) == 1)
        #expect(schedule.expected(at: 1_000_999_999) == 1)
        #expect(schedule.expected(at: 1_001_000_000) == 2)
        #expect(schedule.expected(at: 2_000_000_000) == 1001)
        #expect(schedule.due(at: 2_000_000_000, sent: 1000) == 1)
        #expect(schedule.due(at: 2_000_000_000, sent: 5000) == 0)
    }

    @Test func behindScheduleCatchesUp() {
        let schedule = PublishSchedule(startNanos: 0, rate: 100)
        // 1 s late with nothing sent: the whole second's worth is due at once.
        #expect(schedule.due(at: 1_000_000_000, sent: 0) == 101)
    }

    @Test func unpacedIsUnbounded() {
        #expect(PublishSchedule(startNanos: 0, rate: nil).due(at: 0, sent: 10) == Int.max)
        #expect(PublishSchedule(startNanos: 0, rate: 0).rate == nil)
    }

    @Test func staggeredStartsStayWithinOneInterval() {
        let starts = (0..<4).map { PublishSchedule.staggeredStart(base: 1000, index: $0, of: 4, rate: 1000) }
        let expected: [UInt64] = [1000, 251_000, 501_000, 751_000]
        #expect(starts == expected)
        #expect(PublishSchedule.staggeredStart(base: 7, index: 3, of: 4, rate: nil) == 7)
    }

    @Test func windowExcludesWarmUpAndEnd() {
        let window = MeasurementWindow(publishStart: 100, warmupNanos: 50, durationNanos: 1_000_000_000)
        #expect(!window.contains(149))
        #expect(window.contains(150))
        #expect(window.contains(1_000_000_149))
        #expect(!window.contains(1_000_000_150))
        #expect(window.durationSeconds == 1)
    }
}

@Suite struct ScenarioPlanTests {
    private func config(_ scenario: BenchScenarioKind, _ arguments: [String] = []) throws -> BenchConfiguration {
        try BenchOptions.parse(arguments).configuration(for: scenario, runID: "r1")
    }

    @Test func fanoutDefaultsToOnePublisherAndTwentySubscribersOfOneTopic() throws {
        let plan = ScenarioPlan(try config(.fanout))
        #expect(plan.publisherCount == 1)
        #expect(plan.subscriberCount == 20)
        #expect(plan.deliveriesPerMessage == 20)
        #expect(plan.clients.first?.role == .subscriber(filter: "bench/r1/fanout"))
        #expect(plan.clients.last?.role == .publisher(topic: "bench/r1/fanout", index: 0))
        #expect(Set(plan.clients.map(\.clientID)).count == 21, "client identifiers are unique")
    }

    @Test func faninPublishersUseTheirOwnTopicsUnderOneWildcard() throws {
        let plan = ScenarioPlan(try config(.fanin))
        #expect(plan.publisherCount == 20)
        #expect(plan.subscriberCount == 1)
        #expect(plan.deliveriesPerMessage == 1)
        #expect(plan.clients[0].role == .subscriber(filter: "bench/r1/fanin/+"))
        #expect(plan.clients[1].role == .publisher(topic: "bench/r1/fanin/0", index: 0))
        #expect(plan.clients[20].role == .publisher(topic: "bench/r1/fanin/19", index: 19))
    }

    @Test func subscribersConnectBeforePublishers() throws {
        for scenario in [BenchScenarioKind.fanout, .fanin, .pairs] {
            let roles = ScenarioPlan(try config(scenario)).clients.map(\.role)
            let firstPublisher = roles.firstIndex { if case .publisher = $0 { true } else { false } } ?? 0
            let lastSubscriber = roles.lastIndex { if case .subscriber = $0 { true } else { false } } ?? 0
            #expect(lastSubscriber < firstPublisher)
        }
    }

    @Test func pairsGiveEachPairItsOwnTopic() throws {
        let plan = ScenarioPlan(try config(.pairs, ["--publishers", "3"]))
        #expect(plan.clients.map(\.role) == [
            .subscriber(filter: "bench/r1/pairs/0"), .subscriber(filter: "bench/r1/pairs/1"), .subscriber(filter: "bench/r1/pairs/2"),
            .publisher(topic: "bench/r1/pairs/0", index: 0), .publisher(topic: "bench/r1/pairs/1", index: 1),
            .publisher(topic: "bench/r1/pairs/2", index: 2),
        ])
        #expect(plan.deliveriesPerMessage == 1)
    }

    @Test func pubSubstitutesThePublisherIndex() throws {
        let plan = ScenarioPlan(try config(.pub, ["--publishers", "2", "--topic", "plant/%i/temp"]))
        #expect(plan.clients.map(\.role) == [.publisher(topic: "plant/0/temp", index: 0), .publisher(topic: "plant/1/temp", index: 1)])
        #expect(plan.deliveriesPerMessage == nil)
    }

    @Test func connOpensIdleConnections() throws {
        let plan = ScenarioPlan(try config(.conn, ["--connections", "5"]))
        #expect(plan.clients.count == 5)
        #expect(plan.clients.allSatisfy { $0.role == .idle })
    }
}

@Suite struct BenchOptionsTests {
    private func configuration(_ scenario: BenchScenarioKind, _ arguments: [String]) throws -> BenchConfiguration {
        try BenchOptions.parse(arguments).configuration(for: scenario, runID: "r")
    }

    private func usageError(_ scenario: BenchScenarioKind, _ arguments: [String]) -> String? {
        do {
            _ = try configuration(scenario, arguments)
            return nil
        } catch let error as BenchOptions.UsageError {
            return error.description
        } catch {
            return "parse: \(error)"
        }
    }

    @Test func readsTheDocumentedOptions() throws {
        let config = try configuration(.fanin, [
            "--host", "::1", "--tls", "--cafile", "ca.pem", "--username", "u", "--password", "p", "--mqtt", "5",
            "--qos", "2", "--size", "256", "--publishers", "5", "--subscribers", "2", "--rate", "1000", "--duration", "3",
        ])
        #expect(config.host == "::1")
        #expect(config.port == 8883)
        #expect(config.tls == .init(caFile: "ca.pem", insecure: false, serverName: nil))
        #expect(config.version == .v5)
        #expect(config.qos == .exactlyOnce)
        #expect(config.payloadSize == 256)
        #expect(config.publishers == 5 && config.subscribers == 2)
        #expect(config.rate == 1000)
        #expect(config.durationSeconds == 3)
    }

    @Test func defaultsAreTheIssuesScenarios() throws {
        let config = try configuration(.fanout, [])
        #expect(config.port == 1883)
        #expect(config.version == .v3_1_1)
        #expect(config.qos == .atMostOnce)
        #expect(config.rate == nil)
        #expect(config.durationSeconds == 10)
        #expect(config.tls == nil)
    }

    @Test func rejectsBadValues() {
        #expect(usageError(.fanout, ["--qos", "3"]) != nil)
        #expect(usageError(.fanout, ["--qos", "-1"]) != nil)
        #expect(usageError(.fanout, ["--mqtt", "3.1"]) != nil)
        #expect(usageError(.fanout, ["--size", "4"]) != nil)
        #expect(usageError(.fanout, ["--rate", "0"]) != nil)
        #expect(usageError(.fanout, ["--duration", "0"]) != nil)
        #expect(usageError(.fanout, ["--port", "70000"]) != nil)
        #expect(usageError(.fanout, ["--cafile", "ca.pem"]) != nil, "--cafile without --tls")
        #expect(usageError(.fanout, ["--password", "p"]) != nil, "3.1.1 password needs a user name")
        #expect(usageError(.fanout, ["--subscribers", "0"]) != nil)
        #expect(usageError(.pairs, ["--publishers", "3", "--subscribers", "4"]) != nil)
        #expect(usageError(.conn, ["--rate", "10"]) != nil)
        #expect(usageError(.pub, ["--topic", "a/+"]) != nil)
        #expect(usageError(.sub, ["--topic", "a/#/b"]) != nil)
        #expect(usageError(.fanout, ["--topic", "a"]) != nil)
        #expect(usageError(.fanout, ["--inflight", "0"]) != nil)
        #expect(usageError(.sub, ["--topic", "plant/+/temp"]) == nil)
    }
}

@Suite struct ProcessSampleTests {
    @Test func parsesResidentMemoryFromStatus() {
        let status = "Name:\tmosquitto\nVmPeak:\t  20000 kB\nVmRSS:\t    7432 kB\nRssAnon:\t 1000 kB\n"
        #expect(ProcessSample.parseRSSKiB(status: status) == 7432)
        #expect(ProcessSample.parseRSSKiB(status: "Name:\tx\n") == nil)
    }

    @Test func parsesCPUTicksAfterACommandNameWithSpacesAndParentheses() {
        // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let stat = "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0"
        #expect(ProcessSample.parseCPUTicks(stat: stat) == 325)
        #expect(ProcessSample.parseCPUTicks(stat: "garbage") == nil)
    }

    @Test func readsItsOwnProcess() throws {
        #if os(Linux)
        let sample = try #require(ProcessSample.readSelf())
        #expect(sample.rssKiB > 0)
        #endif
    }
}

@Suite struct BenchStatsTests {
    @Test func mergingAddsCountersHistogramsAndErrors() {
        var a = BenchStats()
        a.sent = 10
        a.receivedInWindow = 3
        a.recordLatency(1000)
        a.recordError("x")
        var b = BenchStats()
        b.sent = 5
        b.receivedInWindow = 4
        b.recordLatency(3000)
        b.recordError("x")
        b.recordError("y")
        a.merge(b)
        #expect(a.sent == 15)
        #expect(a.receivedInWindow == 7)
        #expect(a.latency.totalCount == 2)
        #expect(a.errors == ["x": 2, "y": 1])
        #expect(a.errorCount == 3)
    }

    @Test func summaryReportsPercentilesInMicroseconds() {
        var stats = BenchStats()
        for micros in 1...1000 { stats.recordLatency(UInt64(micros) * 1000) }
        let summary = LatencySummary(stats.latency)
        #expect(summary.count == 1000)
        #expect(abs(summary.p50 - 500) <= 1)
        #expect(abs(summary.p99 - 990) <= 1)
        #expect(abs(summary.max - 1000) <= 1)
        #expect(LatencySummary(BenchStats().latency).p99 == 0)
    }

    @Test func outOfRangeLatencyIsClampedNotDropped() {
        var stats = BenchStats()
        stats.recordLatency(0)
        stats.recordLatency(UInt64.max)
        #expect(stats.latency.totalCount == 2)
    }
}

@Suite struct BacklogDefaultTests {
    @Test func defaultBacklogStaysWithinThePerClientQueueLimit() {
        #expect(BenchConfiguration.defaultBacklog(subscribers: 1) == 1000)
        #expect(BenchConfiguration.defaultBacklog(subscribers: 20) == 20_000)
        #expect(BenchConfiguration.defaultBacklog(subscribers: 100) == 20_000)
        #expect(BenchConfiguration.defaultBacklog(subscribers: 0) == 1000)
    }

    @Test func explicitBacklogIsKept() throws {
        let config = try BenchOptions.parse(["--max-backlog", "0"]).configuration(for: .fanin, runID: "r")
        #expect(config.maxBacklog == 0)
        let defaulted = try BenchOptions.parse([]).configuration(for: .fanin, runID: "r")
        #expect(defaulted.maxBacklog == nil)
    }

    @Test func persistentSessionsAreOptIn() throws {
        #expect(try BenchOptions.parse(["--persistent-sessions"]).configuration(for: .pairs, runID: "r").persistentSessions)
        #expect(try !BenchOptions.parse([]).configuration(for: .pairs, runID: "r").persistentSessions)
    }
}
