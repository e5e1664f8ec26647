import BastionSecurity
import Synchronization
import Testing

@Suite struct LimitsAuthFailureTrackerTests {
    let attacker = IPAddress("192.0.2.1")!
    let legit = IPAddress("192.0.2.2")!

    func tracker(perAddress: Int = 10, perUsername: Int = 0, violations: Int = 30, window: Duration = .seconds(60),
                 trusted: [IPRange] = BanPolicy.defaultTrustedNetworks) -> (AuthFailureTracker, BanList, ManualLimitClock) {
        let clock = ManualLimitClock()
        var banPolicy = BanPolicy()
        banPolicy.trustedNetworks = trusted
        let bans = BanList(policy: banPolicy, clock: clock)
        var policy = AuthFailurePolicy()
        policy.perAddress = perAddress
        policy.perUsername = perUsername
        policy.protocolViolationsPerAddress = violations
        policy.window = window
        return (AuthFailureTracker(policy: policy, bans: bans, clock: clock), bans, clock)
    }

    @Test func thresholdFailuresFromOneAddressBanIt() {
        let (tracker, bans, _) = tracker()
        for _ in 0..<9 { #expect(tracker.failed(ip: attacker, username: "admin").bans.isEmpty) }
        #expect(bans.isBanned(ip: attacker) == nil)
        let issued = tracker.failed(ip: attacker, username: "admin").bans
        #expect(issued.map(\.subject) == [.ip(attacker)])
        #expect(issued.first?.origin == .authFailures)
        #expect(bans.isBanned(ip: attacker) != nil)
        #expect(bans.isBanned(ip: legit) == nil)
    }

    @Test func trustedAddressesAreNeverBannedAutomatically() {
        let (tracker, bans, _) = tracker(perAddress: 3)
        let loopback = IPAddress("127.0.0.1")!
        let events = EventLog()
        bans.setEventHandler { events.append($0) }
        for _ in 0..<10 { #expect(tracker.failed(ip: loopback, username: nil).bans.isEmpty) }
        #expect(bans.isBanned(ip: loopback) == nil)
        #expect(events.all.contains(.suppressed(.ip(loopback), .authFailures)))
        // 127.0.0.2 is not 127.0.0.1/32: it is banned like any address.
        let other = IPAddress("127.0.0.2")!
        for _ in 0..<3 { _ = tracker.failed(ip: other, username: nil) }
        #expect(bans.isBanned(ip: other) != nil)
    }

    @Test func anEmptyTrustListTrustsNothing() {
        let (tracker, bans, _) = tracker(perAddress: 3, trusted: [])
        let loopback = IPAddress("127.0.0.1")!
        for _ in 0..<3 { _ = tracker.failed(ip: loopback, username: nil) }
        #expect(bans.isBanned(ip: loopback) != nil)
    }

    @Test func failuresThatAreNoEvidenceDoNotCount() {
        let (tracker, bans, _) = tracker(perAddress: 2)
        for _ in 0..<10 { _ = tracker.failed(ip: attacker, username: "x", weight: .none) }
        #expect(bans.isBanned(ip: attacker) == nil)
    }

    @Test func failuresSpreadBeyondTheWindowDoNotBan() {
        let (tracker, bans, clock) = tracker(perAddress: 3, window: .seconds(60))
        for _ in 0..<10 {
            #expect(tracker.failed(ip: attacker, username: nil).bans.isEmpty)
            clock.advance(by: .seconds(31))
        }
        #expect(bans.isBanned(ip: attacker) == nil)
    }

    @Test func protocolViolationsBanAnAddressAtTheirOwnThreshold() {
        let (tracker, bans, _) = tracker(violations: 4)
        for _ in 0..<3 { #expect(tracker.violation(ip: attacker) == nil) }
        #expect(tracker.violation(ip: attacker)?.origin == .protocolViolations)
        #expect(bans.isBanned(ip: attacker) != nil)
    }

    @Test func aUserUnderAttackIsThrottledOnlyForTheSourcesThatFailed() {
        let (tracker, bans, _) = tracker(perAddress: 100, perUsername: 5)
        let sources = (0..<5).map { IPAddress(ipv4: 0x0A00_0001 + UInt32($0)) }
        var throttled = false
        for ip in sources { throttled = tracker.failed(ip: ip, username: "operator").userThrottled || throttled }
        #expect(throttled)
        // The user name is not banned everywhere: its owner logs in from a clean source.
        #expect(bans.isBanned(username: "operator") == nil)
        #expect(!tracker.isThrottled(ip: legit, username: "operator"))
        for ip in sources { #expect(tracker.isThrottled(ip: ip, username: "operator")) }
        #expect(!tracker.isThrottled(ip: sources[0], username: "other"))
    }

    @Test func aSourceThatLoggedInRecentlyIsNotThrottled() {
        let (tracker, _, _) = tracker(perAddress: 100, perUsername: 3)
        let office = IPAddress("198.51.100.7")!
        tracker.succeeded(ip: office, username: "alice")
        // Someone behind the same address guesses, and so do others.
        _ = tracker.failed(ip: office, username: "alice")
        _ = tracker.failed(ip: attacker, username: "alice")
        _ = tracker.failed(ip: attacker, username: "alice")
        #expect(tracker.isThrottled(ip: attacker, username: "alice"))
        #expect(!tracker.isThrottled(ip: office, username: "alice"))
    }

    @Test func cheapFailuresDoNotThrottleAUser() {
        // Password-less CONNECTs with a user name cost the broker nothing it must defend: they
        // must not lock the user out.
        let (tracker, _, _) = tracker(perAddress: 100, perUsername: 3)
        for i in 0..<30 { _ = tracker.failed(ip: IPAddress(ipv4: 0xC000_0200 + UInt32(i % 3)), username: "alice", weight: .addressOnly) }
        #expect(!tracker.isThrottled(ip: attacker, username: "alice"))
        #expect(!tracker.isThrottled(ip: IPAddress(ipv4: 0xC000_0200), username: "alice"))
    }

    @Test func longUserNamesDoNotGrowTheTracker() {
        var policy = AuthFailurePolicy()
        policy.perUsername = 1000
        policy.maximumBytes = 256 * 1024
        let clock = ManualLimitClock()
        let tracker = AuthFailureTracker(policy: policy, bans: BanList(clock: clock), clock: clock)
        let long = String(repeating: "u", count: 60_000)
        for i in 0..<20_000 { _ = tracker.failed(ip: IPAddress(ipv4: UInt32(i)), username: long + "\(i)") }
        let usage = tracker.usage
        #expect(usage.bytes <= policy.maximumBytes)
        #expect(usage.keys > 0)
    }

    @Test func zeroDisablesACounter() {
        let (tracker, bans, _) = tracker(perAddress: 0, perUsername: 0, violations: 0)
        for _ in 0..<100 {
            _ = tracker.failed(ip: attacker, username: "x")
            _ = tracker.violation(ip: attacker)
        }
        #expect(bans.list().isEmpty)
        #expect(!tracker.isThrottled(ip: attacker, username: "x"))
    }

    @Test func countingStartsOverAfterABan() {
        let (tracker, bans, clock) = tracker(perAddress: 2)
        _ = tracker.failed(ip: attacker, username: nil)
        #expect(tracker.failed(ip: attacker, username: nil).bans.count == 1)
        clock.advance(by: .seconds(60))
        #expect(bans.isBanned(ip: attacker) == nil)
        #expect(tracker.failed(ip: attacker, username: nil).bans.isEmpty)
        #expect(tracker.failed(ip: attacker, username: nil).bans.first?.offence == 2)
    }
}

@Suite struct LimitsFlapDetectorTests {
    func detector() -> (FlapDetector, BanList, ManualLimitClock) {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        var policy = FlapPolicy()
        policy.connections = 5
        policy.window = .seconds(10)
        policy.shortSession = .seconds(2)
        return (FlapDetector(policy: policy, bans: bans, clock: clock), bans, clock)
    }

    @Test func shortUncleanSessionsOfOneClientIDInATightLoopBackItOff() {
        let (detector, bans, clock) = detector()
        for _ in 0..<4 {
            #expect(detector.sessionEnded(clientID: "plc-7", duration: .milliseconds(100), clean: false) == nil)
            clock.advance(by: .seconds(1))
        }
        let ban = detector.sessionEnded(clientID: "plc-7", duration: .milliseconds(100), clean: false)
        #expect(ban?.origin == .flapping)
        #expect(ban?.subject == .clientID("plc-7"))
        #expect(bans.isBanned(clientID: "plc-7") != nil)
        #expect(bans.isBanned(clientID: "plc-8") == nil)
    }

    @Test func manyDifferentClientsAreNotFlapping() {
        let (detector, bans, _) = detector()
        for i in 0..<1000 { _ = detector.sessionEnded(clientID: "cron-\(i)", duration: .milliseconds(5), clean: false) }
        #expect(bans.list().isEmpty)
    }

    @Test func sessionsEndedWithDisconnectNeverCount() {
        let (detector, bans, _) = detector()
        for _ in 0..<100 { _ = detector.sessionEnded(clientID: "script", duration: .milliseconds(5), clean: true) }
        #expect(bans.list().isEmpty)
    }

    @Test func longSessionsAreNotFlapping() {
        let (detector, bans, _) = detector()
        for _ in 0..<50 { _ = detector.sessionEnded(clientID: "plc", duration: .seconds(2), clean: false) }
        #expect(bans.list().isEmpty)
    }

    @Test func slowReconnectsAreNotFlapping() {
        let (detector, bans, clock) = detector()
        for _ in 0..<50 {
            _ = detector.sessionEnded(clientID: "plc", duration: .milliseconds(10), clean: false)
            clock.advance(by: .seconds(3))
        }
        #expect(bans.list().isEmpty)
    }
}

/// Collects ban list events in tests.
final class EventLog: Sendable {
    private let events = Mutex<[BanEvent]>([])
    func append(_ event: BanEvent) { events.withLock { $0.append(event) } }
    var all: [BanEvent] { events.withLock { $0 } }
}
