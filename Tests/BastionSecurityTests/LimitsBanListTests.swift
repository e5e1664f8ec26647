import BastionSecurity
import Synchronization
import Testing

/// Collects ban events for assertions.
final class BanEventLog: Sendable {
    private let events = Mutex<[BanEvent]>([])
    var all: [BanEvent] { events.withLock { $0 } }
    func append(_ e: BanEvent) { events.withLock { $0.append(e) } }
}

@Suite struct LimitsBanListTests {
    let ip = IPAddress("198.51.100.9")!

    @Test func backOffDoublesFromOneMinuteToOneHour() {
        let policy = BanPolicy()
        let durations = (1...8).map { policy.duration(forOffence: $0) }
        #expect(durations == [.seconds(60), .seconds(120), .seconds(240), .seconds(480), .seconds(960), .seconds(1920),
                              .seconds(3600), .seconds(3600)])
        #expect(policy.duration(forOffence: 1000) == .seconds(3600))
    }

    @Test func repeatOffencesGetLongerBansAndExpire() throws {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        let first = try #require(bans.punish(.ip(ip), origin: .authFailures))
        #expect(first.offence == 1)
        #expect(first.duration == .seconds(60))
        #expect(bans.isBanned(ip: ip) != nil)
        clock.advance(by: .seconds(60))
        #expect(bans.isBanned(ip: ip) == nil)
        let second = try #require(bans.punish(.ip(ip), origin: .authFailures))
        #expect(second.offence == 2)
        #expect(second.duration == .seconds(120))
    }

    @Test func offencesAreForgottenAfterAQuietPeriod() throws {
        let clock = ManualLimitClock()
        var policy = BanPolicy()
        policy.forgetAfter = .seconds(3600)
        let bans = BanList(policy: policy, clock: clock)
        _ = bans.punish(.ip(ip), origin: .flapping)
        clock.advance(by: .seconds(60 + 3600))
        let again = try #require(bans.punish(.ip(ip), origin: .flapping))
        #expect(again.offence == 1)
    }

    @Test func punishingABannedSubjectDoesNotExtendTheBan() {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        #expect(bans.punish(.ip(ip), origin: .authFailures) != nil)
        clock.advance(by: .seconds(30))
        #expect(bans.punish(.ip(ip), origin: .authFailures) == nil)
        clock.advance(by: .seconds(30))
        #expect(bans.isBanned(ip: ip) == nil)
    }

    @Test func cidrBansCoverTheirAddresses() throws {
        let bans = BanList(clock: ManualLimitClock())
        bans.setConfigured([(.address(try #require(IPRange("198.51.100.0/24"))), "lab network")])
        #expect(bans.isBanned(ip: ip)?.origin == .config)
        #expect(bans.isBanned(ip: try #require(IPAddress("198.51.101.1"))) == nil)
        // An address inside a banned block is not punished on top.
        #expect(bans.punish(.ip(ip), origin: .authFailures) == nil)
    }

    @Test func usernameAndClientIDBans() {
        let bans = BanList(clock: ManualLimitClock())
        bans.ban(.username("mallory"), duration: nil)
        bans.ban(.clientID("rogue-1"), duration: .seconds(5))
        #expect(bans.isBanned(username: "mallory")?.isPermanent == true)
        #expect(bans.isBanned(username: "alice") == nil)
        #expect(bans.isBanned(clientID: "rogue-1") != nil)
        #expect(bans.isBanned(ip: nil, username: "alice", clientID: "rogue-1")?.subject == .clientID("rogue-1"))
    }

    @Test func configuredBansCannotBeRemovedThroughUnban() {
        let bans = BanList(clock: ManualLimitClock())
        bans.setConfigured([(.username("mallory"), nil)])
        #expect(bans.unban(.username("mallory")) == .configured)
        #expect(bans.isBanned(username: "mallory") != nil)
        #expect(bans.unban(.username("nobody")) == .notFound)
        bans.ban(.ip(ip), duration: nil)
        #expect(bans.unban(.ip(ip)) == .removed)
        #expect(bans.isBanned(ip: ip) == nil)
    }

    @Test func everyChangeIsReported() {
        let clock = ManualLimitClock()
        let log = BanEventLog()
        let bans = BanList(clock: clock, onEvent: { log.append($0) })
        bans.setConfigured([(.username("a"), nil), (.username("b"), nil)])
        let punished = bans.punish(.ip(ip), origin: .authFailures)
        bans.ban(.clientID("c"), duration: nil)
        bans.unban(.clientID("c"))
        bans.setConfigured([(.username("b"), nil)])
        clock.advance(by: .seconds(61))
        bans.sweep()
        let events = log.all
        #expect(events.count == 7)
        #expect(events.contains(.unbanned(.username("a"), .configReload)))
        #expect(events.contains(.unbanned(.clientID("c"), .removed)))
        #expect(events.contains(.unbanned(.ip(ip), .expired)))
        #expect(punished.map { events.contains(.banned($0)) } == true)
    }

    @Test func listShowsActiveBansOnly() {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        bans.setConfigured([(.username("cfg"), "from config")])
        bans.ban(.ip(ip), duration: .seconds(10))
        bans.ban(.clientID("x"), duration: nil)
        #expect(bans.list().count == 3)
        #expect(bans.list().first?.origin == .config)
        clock.advance(by: .seconds(10))
        #expect(bans.list().map(\.subject) == [.username("cfg"), .clientID("x")])
        #expect(bans.activeCount == 2)
    }

    @Test func subjectsParseFromAPIKinds() {
        #expect(BanSubject(kind: "ip", value: "10.1.2.3") == .ip(IPAddress("10.1.2.3")!))
        #expect(BanSubject(kind: "cidr", value: "10.0.0.0/8")?.kind == "cidr")
        #expect(BanSubject(kind: "user", value: "bob") == .username("bob"))
        #expect(BanSubject(kind: "client_id", value: "c1") == .clientID("c1"))
        #expect(BanSubject(kind: "ip", value: "not-an-ip") == nil)
        #expect(BanSubject(kind: "user", value: "") == nil)
        #expect(BanSubject(kind: "planet", value: "x") == nil)
    }
}
