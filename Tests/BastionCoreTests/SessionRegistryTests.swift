import BastionCore
import MQTTCodec
import NIOCore
import Testing

@Suite struct SessionRegistryTests {
    let now = NIODeadline.now()

    private func attach(_ registry: SessionRegistry, _ id: String, clean: Bool, expiry: UInt32, _ conn: FakeConnection,
                        owner: String = "user:alice")
        -> (SessionHandle, SessionState, Bool, SessionRegistry.EndedSession?)?
    {
        if case .attached(let h, let s, let present, let ended) = registry.connect(
            clientID: id, owner: owner, cleanStart: clean, expiryInterval: expiry, connection: conn) {
            return (h, s, present, ended)
        }
        return nil
    }

    @Test func newSessionThenResume() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, fresh, present, _) = attach(registry, "dev", clean: false, expiry: 60, c1) else { Issue.record("not attached"); return }
        #expect(!present)
        var state = fresh
        state.subscriptions["a/#"] = subscription("a/#")
        guard case .offline(let expiresAt) = registry.detach(handle, connection: c1, state: state, pendingWill: nil, now: now) else {
            Issue.record("session did not go offline"); return
        }
        #expect(expiresAt == now + .seconds(60))
        let c2 = FakeConnection()
        guard let (again, resumed, present2, ended) = attach(registry, "dev", clean: false, expiry: 120, c2) else { Issue.record("not attached"); return }
        #expect(again === handle)
        #expect(present2)
        #expect(ended == nil)
        #expect(resumed.subscriptions.keys.sorted() == ["a/#"])
        #expect(resumed.expiryInterval == 120)
        #expect(handle.connection === c2)
    }

    @Test func cleanStartEndsTheOldSession() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (old, state, _, _) = attach(registry, "dev", clean: false, expiry: 60, c1) else { return }
        var s = state
        s.subscriptions["x"] = subscription("x")
        let will = PendingWill(message: message("will"), publishAt: now + .seconds(30))
        _ = registry.detach(old, connection: c1, state: s, pendingWill: will, now: now)
        guard let (new, fresh, present, ended) = attach(registry, "dev", clean: true, expiry: 0, FakeConnection()) else { return }
        #expect(new !== old)
        #expect(!present)
        #expect(fresh.subscriptions.isEmpty)
        #expect(ended?.handle === old)
        #expect(ended?.subscriptions.map(\.filter) == ["x"])
        #expect(ended?.pendingWill?.message.topic == "will", "the ended session's will is due now")
        #expect(old.isEnded)
    }

    @Test func anotherIdentityCannotResumeTakeOverOrWipeASession() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "dev", clean: false, expiry: 60, c1) else { Issue.record("not attached"); return }
        // While online: no takeover.
        for clean in [false, true] {
            guard case .ownedByOther(let owner) = registry.connect(
                clientID: "dev", owner: "user:mallory", cleanStart: clean, expiryInterval: 60, connection: FakeConnection()) else {
                Issue.record("takeover by another identity"); return
            }
            #expect(owner == "user:alice")
        }
        #expect(handle.connection === c1)
        _ = registry.detach(handle, connection: c1, state: state, pendingWill: nil, now: now)
        // While offline: no resume and no clean start.
        for clean in [false, true] {
            guard case .ownedByOther = registry.connect(
                clientID: "dev", owner: "user:mallory", cleanStart: clean, expiryInterval: 60, connection: FakeConnection()) else {
                Issue.record("resume or wipe by another identity"); return
            }
        }
        #expect(!handle.isEnded)
        #expect(registry.handle(for: "dev") === handle)
        // The owner resumes it.
        guard let (again, _, present, _) = attach(registry, "dev", clean: false, expiry: 60, FakeConnection()) else { Issue.record("owner refused"); return }
        #expect(again === handle && present)
    }

    @Test func sharingIdentitiesMayTakeOverAndUnownedSessionsAreClaimed() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard attach(registry, "gw", clean: false, expiry: 60, c1, owner: "user:gw-a") != nil else { return }
        guard case .mustTakeOver = registry.connect(
            clientID: "gw", owner: "user:gw-b", mayShare: { $0 == "user:gw-a" }, cleanStart: false, expiryInterval: 60,
            connection: FakeConnection()) else { Issue.record("fail-over partner refused"); return }
        let restored = registry.restore(SessionState(clientID: "legacy", expiryInterval: 60), owner: "", disconnectedAt: now)
        guard attach(registry, "legacy", clean: false, expiry: 60, FakeConnection(), owner: "user:bob") != nil else { return }
        #expect(restored.owner == "user:bob")
    }

    @Test func secondConnectionMustTakeOver() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "dev", clean: true, expiry: 0, c1) else { return }
        guard case .mustTakeOver(let other) = registry.connect(clientID: "dev", owner: "user:alice", cleanStart: true, expiryInterval: 0, connection: FakeConnection()) else {
            Issue.record("no takeover"); return
        }
        #expect(other === c1)
        // The old connection detaches; expiry 0 ends the session.
        guard case .ended(let ended) = registry.detach(handle, connection: c1, state: state, pendingWill: nil, now: now) else {
            Issue.record("session did not end"); return
        }
        #expect(ended.handle === handle)
        #expect(registry.handle(for: "dev") == nil)
    }

    @Test func detachByANonOwnerIsIgnored() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "dev", clean: true, expiry: 10, c1) else { return }
        guard case .notOwner = registry.detach(handle, connection: FakeConnection(), state: state, pendingWill: nil, now: now) else {
            Issue.record("a stranger detached the session"); return
        }
        #expect(handle.connection === c1)
    }

    @Test func expiryAndDelayedWills() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "short", clean: false, expiry: 5, c1) else { return }
        let will = PendingWill(message: message("will/short"), publishAt: now + .seconds(2))
        _ = registry.detach(handle, connection: c1, state: state, pendingWill: will, now: now)

        var due = registry.collectDue(now: now + .seconds(1))
        #expect(due.ended.isEmpty && due.wills.isEmpty)
        due = registry.collectDue(now: now + .seconds(3))
        #expect(due.wills.map(\.message.topic) == ["will/short"])
        #expect(due.ended.isEmpty)
        due = registry.collectDue(now: now + .seconds(6))
        #expect(due.ended.map(\.handle.clientID) == ["short"])
        #expect(due.wills.isEmpty, "the will was already sent")
        #expect(registry.handle(for: "short") == nil)
    }

    @Test func reconnectCancelsADelayedWill() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "dev", clean: false, expiry: 100, c1) else { return }
        _ = registry.detach(handle, connection: c1, state: state, pendingWill: PendingWill(message: message("w"), publishAt: now + .seconds(10)), now: now)
        _ = attach(registry, "dev", clean: false, expiry: 100, FakeConnection())
        #expect(registry.collectDue(now: now + .seconds(20)).wills.isEmpty)
    }

    @Test func offlineSessionsQueueOnlyQoS1And2() {
        let registry = SessionRegistry()
        let c1 = FakeConnection()
        guard let (handle, state, _, _) = attach(registry, "dev", clean: false, expiry: 100, c1) else { return }
        if case .online(let ref) = handle.offer(Delivery(message: message("t"), qos: .atLeastOnce, retain: false), limits: BrokerLimits()) {
            #expect(ref === c1)
        } else {
            Issue.record("online session did not forward")
        }
        _ = registry.detach(handle, connection: c1, state: state, pendingWill: nil, now: now)
        guard case .dropped = handle.offer(Delivery(message: message("t", qos: .atMostOnce), qos: .atMostOnce, retain: false), limits: BrokerLimits()) else {
            Issue.record("QoS 0 queued offline"); return
        }
        guard case .queued = handle.offer(Delivery(message: message("t"), qos: .atLeastOnce, retain: false), limits: BrokerLimits()) else {
            Issue.record("QoS 1 not queued offline"); return
        }
        #expect(handle.withOfflineState { $0.state.outbound.queue.count } == 1)
    }
}
