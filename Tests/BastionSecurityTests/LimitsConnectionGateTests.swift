import BastionSecurity
import Testing

@Suite struct LimitsConnectionGateTests {
    let a = IPAddress("192.0.2.1")!
    let b = IPAddress("192.0.2.2")!

    func limits(total: Int = 100, perAddress: Int = 10, rate: Double = 1000, burst: Double = 1000) -> ConnectionLimits {
        var l = ConnectionLimits()
        l.maximumConnections = total
        l.maximumConnectionsPerAddress = perAddress
        l.connectRatePerAddress = rate
        l.connectBurstPerAddress = burst
        return l
    }

    @Test func perAddressCapRefusesOnlyThatAddress() {
        let gate = ConnectionGate(limits: limits(perAddress: 2), clock: ManualLimitClock())
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: a) == .refused(.tooManyPerAddress, report: true))
        #expect(gate.admit(ip: b) == .allowed)
        gate.released(ip: a)
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.openConnections(from: a) == 2)
        #expect(gate.openConnections == 3)
    }

    @Test func totalCapCountsEveryAddress() {
        let gate = ConnectionGate(limits: limits(total: 3), clock: ManualLimitClock())
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: b) == .allowed)
        #expect(gate.admit(ip: b) == .refused(.tooManyTotal, report: true))
        gate.released(ip: b)
        #expect(gate.admit(ip: b) == .allowed)
    }

    @Test func connectRateIsATokenBucketPerAddress() {
        let clock = ManualLimitClock()
        let gate = ConnectionGate(limits: limits(perAddress: 1000, rate: 2, burst: 4), clock: clock)
        for _ in 0..<4 { #expect(gate.admit(ip: a) == .allowed) }
        #expect(gate.admit(ip: a) == .refused(.rateExceeded, report: true))
        #expect(gate.admit(ip: b) == .allowed)
        clock.advance(by: .milliseconds(500))
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: a) == .refused(.rateExceeded, report: false))
    }

    @Test func bannedAddressesAreRefusedFirst() {
        let clock = ManualLimitClock()
        let bans = BanList(clock: clock)
        bans.ban(.ip(a), duration: .seconds(60))
        let gate = ConnectionGate(limits: limits(), bans: bans, clock: clock)
        #expect(gate.admit(ip: a) == .refused(.banned, report: true))
        #expect(gate.admit(ip: a) == .refused(.banned, report: false))
        #expect(gate.admit(ip: b) == .allowed)
        #expect(gate.openConnections == 1)
        clock.advance(by: .seconds(61))
        #expect(gate.admit(ip: a) == .allowed)
    }

    @Test func refusalsAreReportedOncePerIntervalPerAddressAndReason() {
        let clock = ManualLimitClock()
        var l = limits(perAddress: 1)
        l.refusalReportInterval = .seconds(10)
        let gate = ConnectionGate(limits: l, clock: clock)
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: a) == .refused(.tooManyPerAddress, report: true))
        #expect(gate.admit(ip: a) == .refused(.tooManyPerAddress, report: false))
        clock.advance(by: .seconds(10))
        #expect(gate.admit(ip: a) == .refused(.tooManyPerAddress, report: true))
    }

    @Test func listenerLimitsOverrideTheThresholds() {
        let gate = ConnectionGate(limits: limits(perAddress: 10), clock: ManualLimitClock())
        let strict = limits(perAddress: 1)
        #expect(gate.admit(ip: a, listenerLimits: strict) == .allowed)
        #expect(gate.admit(ip: a, listenerLimits: strict) == .refused(.tooManyPerAddress, report: true))
        #expect(gate.admit(ip: a) == .allowed)
    }

    @Test func manyDistinctSourcesKeepTheTableBounded() {
        let clock = ManualLimitClock()
        var l = limits(total: 1_000_000, rate: 1, burst: 1)
        l.maximumTrackedAddresses = 1000
        let gate = ConnectionGate(limits: l, clock: clock)
        // A flood of one-shot sources whose sockets close at once.
        for i in 0..<20_000 {
            let ip = IPAddress(ipv4: 0x0A00_0000 + UInt32(i))
            #expect(gate.admit(ip: ip) == .allowed)
            gate.released(ip: ip)
        }
        #expect(gate.trackedAddresses <= 1000)
    }

    @Test func addressesWithOpenConnectionsAreNeverForgotten() {
        var l = limits(total: 1_000_000, perAddress: 1, rate: 1, burst: 1)
        l.maximumTrackedAddresses = 10
        let gate = ConnectionGate(limits: l, clock: ManualLimitClock())
        #expect(gate.admit(ip: a) == .allowed)
        for i in 0..<100 {
            let ip = IPAddress(ipv4: 0x0A00_0000 + UInt32(i))
            _ = gate.admit(ip: ip)
            gate.released(ip: ip)
        }
        #expect(gate.openConnections(from: a) == 1)
        #expect(gate.admit(ip: a) == .refused(.tooManyPerAddress, report: true))
    }

    @Test func sweepForgetsIdleAddresses() {
        let clock = ManualLimitClock()
        let gate = ConnectionGate(limits: limits(rate: 1, burst: 1), clock: clock)
        #expect(gate.admit(ip: a) == .allowed)
        gate.released(ip: a)
        gate.sweep()
        #expect(gate.trackedAddresses == 1)
        clock.advance(by: .seconds(11))
        gate.sweep()
        #expect(gate.trackedAddresses == 0)
    }

    @Test func releaseWithoutAdmitDoesNotGoNegative() {
        let gate = ConnectionGate(limits: limits(total: 1), clock: ManualLimitClock())
        gate.released(ip: a)
        #expect(gate.openConnections == 0)
        #expect(gate.admit(ip: a) == .allowed)
        #expect(gate.admit(ip: b) == .refused(.tooManyTotal, report: true))
    }
}
