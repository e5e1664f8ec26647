import BastionCore
@testable import BastionIdentity
import Synchronization
import Testing
import BastionTesting

@Suite struct IdentityChainTests {
    @Test func theFirstAllowOrDenyDecides() async {
        let unknown = ScriptedBackend("a", always: .noOpinion)
        let denies = ScriptedBackend("b", always: .deny(BackendDenial(.badCredentials, "no")))
        let allows = ScriptedBackend("c", always: .allow(BackendGrant(username: "alice")))
        let chain = IdentityChain([.init(unknown), .init(denies), .init(allows)])
        #expect(await chain.evaluate(request()) == .denied(BackendDenial(.badCredentials, "no"), by: "b"))
        #expect(unknown.callCount == 1 && denies.callCount == 1 && allows.callCount == 0)

        let allowFirst = IdentityChain([.init(unknown), .init(allows), .init(denies)])
        #expect(await allowFirst.evaluate(request()) == .allowed(BackendGrant(username: "alice"), by: "c"))
    }

    @Test func noOpinionEverywhereIsUnknownAndCostsTheDummyCheck() async {
        let counted = Atomic<Int>(0)
        let chain = IdentityChain([.init(ScriptedBackend("a", always: .noOpinion))], unknownUserCost: { _ in
            counted.add(1, ordering: .relaxed)
        })
        #expect(await chain.evaluate(request()) == .unknown)
        #expect(counted.load(ordering: .relaxed) == 1)
    }

    @Test func backendsThatDoNotApplyAreNotAsked() async {
        let tokenOnly = ScriptedBackend("jwt", applies: { _ in false }) { _ in .allow(BackendGrant(username: "x")) }
        let chain = IdentityChain([.init(tokenOnly)])
        #expect(await chain.evaluate(request()) == .unknown)
        #expect(tokenOnly.callCount == 0)
        #expect(!chain.anyApplies(to: request()))
    }

    @Test func anUnavailableBackendFailsClosedAndAlerts() async {
        let recorder = AlertRecorder()
        let down = ScriptedBackend("db", always: .unavailable("connection refused"))
        let later = ScriptedBackend("later", always: .allow(BackendGrant(username: "alice")))
        let chain = IdentityChain([.init(down), .init(later)], alerts: recorder.alerts())
        #expect(await chain.evaluate(request()) == .unavailable(backend: "db", reason: "connection refused"))
        #expect(later.callCount == 0)
        #expect(recorder.backends == ["db"])
    }

    @Test func alertsAreRateLimitedPerBackend() async {
        let recorder = AlertRecorder()
        let clock = ManualClock()
        let alerts = recorder.alerts(clock: clock)
        alerts.unavailable("db", reason: "x")
        alerts.unavailable("db", reason: "x")
        alerts.unavailable("ldap", reason: "x")
        clock.advance(.seconds(61))
        alerts.unavailable("db", reason: "x")
        #expect(recorder.backends == ["db", "ldap", "db"])
    }

    @Test func aSlowBackendTimesOutAsUnavailable() async {
        let recorder = AlertRecorder()
        let slow = ScriptedBackend("slow") { _ in
            try? await Task.sleep(for: .seconds(30))
            return .allow(BackendGrant(username: "alice"))
        }
        let chain = IdentityChain([.init(slow, limits: .init(timeout: .milliseconds(50)))], alerts: recorder.alerts())
        guard case .unavailable(let backend, _) = await chain.evaluate(request()) else {
            Issue.record("expected unavailable")
            return
        }
        #expect(backend == "slow")
        #expect(recorder.backends == ["slow"])
    }

    @Test func aFullQueueAnswersBusyWithoutWaiting() async {
        let release = AsyncGate()
        let held = ScriptedBackend("db") { _ in
            await release.wait()
            return .allow(BackendGrant(username: "alice"))
        }
        let chain = IdentityChain([.init(held, limits: .init(maximumConcurrent: 1, maximumQueued: 0, timeout: .seconds(30)))])
        let first = Task { await chain.evaluate(request()) }
        while held.callCount == 0 { await Task.yield() }
        #expect(await chain.evaluate(request()) == .busy(backend: "db"))
        release.open()
        #expect(await first.value == .allowed(BackendGrant(username: "alice"), by: "db"))
    }

    @Test func anUnusableGrantIsUnavailable() async {
        let garbage = ScriptedBackend("hook", always: .allow(BackendGrant(username: "alice", rules: [BackendACLRule(access: .deny, filter: "a/#/b")])))
        let recorder = AlertRecorder()
        let chain = IdentityChain([.init(garbage)], alerts: recorder.alerts())
        guard case .unavailable = await chain.evaluate(request()) else {
            Issue.record("an invalid filter must not become an allow")
            return
        }
        #expect(recorder.backends == ["hook"])
        let tooMany = (0...GrantValidation.maximumRules).map { BackendACLRule(access: .read, filter: "t/\($0)") }
        #expect(GrantValidation.problem(BackendGrant(username: "a", rules: tooMany)) != nil)
        #expect(GrantValidation.problem(BackendGrant(username: "")) != nil)
        #expect(GrantValidation.problem(BackendGrant(username: "a\u{0}b")) != nil)
        #expect(GrantValidation.problem(BackendGrant(username: "alice", rules: [BackendACLRule(access: .read, filter: "a/+/b")])) == nil)
    }
}

/// Opens once; waiters resume when it does.
final class AsyncGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
