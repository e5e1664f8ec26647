import BastionSecurity
import Testing

@Suite struct LimitsPublishRateLimiterTests {
    let t0 = MonotonicInstant.origin

    func policy(messages: Double? = nil, bytes: Double? = nil, action: PublishRatePolicy.Action) -> PublishRatePolicy {
        var p = PublishRatePolicy()
        p.messagesPerSecond = messages
        p.bytesPerSecond = bytes
        p.action = action
        p.minimumByteCapacity = 1000
        return p
    }

    /// Feeds (size, time offset) pairs through a limiter; returns the decisions.
    func run(_ policy: PublishRatePolicy, _ publishes: [(Int, Duration)]) -> [PublishRateDecision] {
        var limiter = PublishRateLimiter(policy: policy, now: t0)
        return publishes.map { limiter.consume(bytes: $0.0, now: t0 + $0.1) }
    }

    /// The pause of a throttle decision (nil for any other decision).
    func pause(_ decision: PublishRateDecision) -> Duration? {
        if case .throttle(let d) = decision { return d }
        return nil
    }

    func isAbout(_ d: Duration?, _ expected: Duration) -> Bool {
        guard let d else { return false }
        return abs((d - expected).seconds) < 1e-4
    }

    @Test func unlimitedByDefault() {
        let decisions = run(PublishRatePolicy(), Array(repeating: (1_000_000, .zero), count: 10_000))
        #expect(decisions.allSatisfy { $0 == .ok })
    }

    @Test func backpressurePausesForTheTimeTheDebtTakes() {
        let justAfter = Duration.milliseconds(300) + .microseconds(1)
        let d = run(policy(messages: 10, action: .backpressure),
                    Array(repeating: (10, .zero), count: 12) + [(10, justAfter), (10, justAfter), (10, .seconds(2))])
        // A one-second burst of 10 passes.
        #expect(d[0..<10].allSatisfy { $0 == .ok })
        // The 11th is accepted but costs 0.1 s of reading, the 12th 0.2 s.
        #expect(isAbout(pause(d[10]), .milliseconds(100)))
        #expect(isAbout(pause(d[11]), .milliseconds(200)))
        // After the pause the debt is repaid and one more message fits; the next waits again.
        #expect(d[12] == .ok)
        #expect(isAbout(pause(d[13]), .milliseconds(100)))
        #expect(d[14] == .ok)
    }

    @Test func byteRateThrottlesLargeMessages() {
        let d = run(policy(bytes: 1000, action: .backpressure), [(1000, .zero), (500, .zero)])
        #expect(d[0] == .ok)
        #expect(isAbout(pause(d[1]), .milliseconds(500)))
    }

    @Test func disconnectPolicyRefusesOverRateMessagesWithoutCharging() {
        let d = run(policy(messages: 2, bytes: 100_000, action: .disconnect),
                    [(10, .zero), (10, .zero), (10, .zero), (10, .milliseconds(500))])
        #expect(d == [.ok, .ok, .exceeded, .ok])
    }

    @Test func theByteBucketAlwaysHoldsOneMaximumPacket() {
        // 10 bytes/s would otherwise never let a 1000-byte packet through.
        let d = run(policy(bytes: 10, action: .disconnect), [(1000, .zero), (1000, .zero)])
        #expect(d == [.ok, .exceeded])
    }
}

@Suite struct LimitsAlertMonitorTests {
    func monitor(threshold: Int = 5) -> (AlertMonitor, ManualLimitClock) {
        let clock = ManualLimitClock()
        var policy = AlertPolicy()
        policy.authFailures = threshold
        policy.window = .seconds(60)
        return (AlertMonitor(policy: policy, clock: clock), clock)
    }

    @Test func firesWhenTheThresholdIsReachedWithinTheWindow() {
        let (monitor, _) = monitor()
        for _ in 0..<4 { #expect(monitor.record(.authFailures) == nil) }
        let alert = monitor.record(.authFailures)
        #expect(alert == Alert(kind: .authFailures, count: 5, threshold: 5, window: .seconds(60)))
    }

    @Test func firesAtMostOncePerWindow() {
        let (monitor, clock) = monitor()
        var fired = 0
        for _ in 0..<100 where monitor.record(.authFailures) != nil { fired += 1 }
        #expect(fired == 1)
        clock.advance(by: .seconds(30))
        #expect(monitor.record(.authFailures) == nil)
        clock.advance(by: .seconds(30))
        #expect(monitor.record(.authFailures) != nil)
    }

    @Test func eventsSpreadThinlyNeverFire() {
        let (monitor, clock) = monitor()
        for _ in 0..<100 {
            #expect(monitor.record(.authFailures) == nil)
            clock.advance(by: .seconds(20))
        }
    }

    @Test func kindsWithoutAThresholdNeverFire() {
        let (monitor, _) = monitor()
        for _ in 0..<1000 {
            #expect(monitor.record(.aclDenials) == nil)
            #expect(monitor.record(.connectionRate) == nil)
        }
    }

    @Test func theWindowSlides() {
        // One event at t=0, three at t=55 and two at t=62: five within the last 60 s at t=62,
        // although no fixed minute holds five.
        let (monitor, clock) = monitor()
        #expect(monitor.record(.authFailures) == nil)
        clock.advance(by: .seconds(55))
        for _ in 0..<3 { #expect(monitor.record(.authFailures) == nil) }
        clock.advance(by: .seconds(7))
        #expect(monitor.record(.authFailures) == nil)
        #expect(monitor.record(.authFailures) != nil)
    }
}
