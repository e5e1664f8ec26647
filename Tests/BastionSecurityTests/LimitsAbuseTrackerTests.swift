import BastionSecurity
import Testing

@Suite struct LimitsAuthFailureTrackerTests {
    let attacker = IPAddress("127.0.0.1")!
    let legit = IPAddress("127.0.0.2")!

    func tracker(perAddress: Int = 10, perUsername: Int = 0, window: Duration = .seconds(60)) -> (AuthFailureTracker, BanList, ManualLimitClock) {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        var policy = AuthFailurePolicy()
        policy.perAddress = perAddress
        policy.perUsername = perUsername
        policy.window = window
        return (AuthFailureTracker(policy: policy, bans: bans, clock: clock), bans, clock)
    }

    @Test func thresholdFailuresFromOneAddressBanIt() {
        let (tracker, bans, _) = tracker()
        for _ in 0..<9 { #expect(tracker.failed(ip: attacker, username: "admin").isEmpty) }
        #expect(bans.isBanned(ip: attacker) == nil)
        let issued = tracker.failed(ip: attacker, username: "admin")
        #expect(issued.map(\.subject) == [.ip(attacker)])
        #expect(issued.first?.origin == .authFailures)
        #expect(bans.isBanned(ip: attacker) != nil)
        #expect(bans.isBanned(ip: legit) == nil)
    }

    @Test func failuresSpreadBeyondTheWindowDoNotBan() {
        let (tracker, bans, clock) = tracker(perAddress: 3, window: .seconds(60))
        for _ in 0..<10 {
            #expect(tracker.failed(ip: attacker, username: nil).isEmpty)
            clock.advance(by: .seconds(31))
        }
        #expect(bans.isBanned(ip: attacker) == nil)
    }

    @Test func failuresForOneUserFromManyAddressesBanTheUserName() {
        let (tracker, bans, _) = tracker(perAddress: 100, perUsername: 5)
        for i in 0..<5 { _ = tracker.failed(ip: IPAddress(ipv4: 0x0A00_0001 + UInt32(i)), username: "operator") }
        #expect(bans.isBanned(username: "operator") != nil)
        #expect(bans.isBanned(username: "other") == nil)
    }

    @Test func zeroDisablesACounter() {
        let (tracker, bans, _) = tracker(perAddress: 0, perUsername: 0)
        for _ in 0..<100 { _ = tracker.failed(ip: attacker, username: "x") }
        #expect(bans.list().isEmpty)
    }

    @Test func countingStartsOverAfterABan() {
        let (tracker, bans, clock) = tracker(perAddress: 2)
        _ = tracker.failed(ip: attacker, username: nil)
        #expect(tracker.failed(ip: attacker, username: nil).count == 1)
        clock.advance(by: .seconds(60))
        #expect(bans.isBanned(ip: attacker) == nil)
        #expect(tracker.failed(ip: attacker, username: nil).isEmpty)
        #expect(tracker.failed(ip: attacker, username: nil).first?.offence == 2)
    }
}

@Suite struct LimitsFlapDetectorTests {
    let ip = IPAddress("203.0.113.5")!

    func detector() -> (FlapDetector, BanList, ManualLimitClock) {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        var policy = FlapPolicy()
        policy.connections = 5
        policy.window = .seconds(10)
        policy.shortSession = .seconds(2)
        return (FlapDetector(policy: policy, bans: bans, clock: clock), bans, clock)
    }

    @Test func shortConnectionsInATightLoopBanTheAddress() {
        let (detector, bans, clock) = detector()
        for _ in 0..<4 {
            #expect(detector.connectionClosed(ip: ip, duration: .milliseconds(100)) == nil)
            clock.advance(by: .seconds(1))
        }
        let ban = detector.connectionClosed(ip: ip, duration: .milliseconds(100))
        #expect(ban?.origin == .flapping)
        #expect(bans.isBanned(ip: ip) != nil)
    }

    @Test func longSessionsAreNotFlapping() {
        let (detector, bans, _) = detector()
        for _ in 0..<50 { _ = detector.connectionClosed(ip: ip, duration: .seconds(2)) }
        #expect(bans.isBanned(ip: ip) == nil)
    }

    @Test func slowReconnectsAreNotFlapping() {
        let (detector, bans, clock) = detector()
        for _ in 0..<50 {
            _ = detector.connectionClosed(ip: ip, duration: .milliseconds(10))
            clock.advance(by: .seconds(3))
        }
        #expect(bans.isBanned(ip: ip) == nil)
    }
}
