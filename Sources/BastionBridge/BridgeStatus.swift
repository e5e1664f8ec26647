import Synchronization

/// What a bridge reports to `/metrics`, `$SYS/bastion/bridges/{name}/…` and the admin API. The
/// link writes it on its loop; readers on other threads see relaxed atomics.
public final class BridgeStatus: Sendable {
    public enum DropReason: String, Sendable, CaseIterable {
        /// A QoS 0 message while the remote was unreachable or not keeping up.
        case notConnected = "not_connected"
        /// A QoS 0 message over the byte rate.
        case rateLimited = "rate_limited"
        /// Larger than the remote's Maximum Packet Size.
        case tooLarge = "too_large"
        /// A remote publish that no `in` topic admits (always, with `upward_only`).
        case fromRemote = "from_remote"
        /// The remote answered the PUBLISH with an error (0x87 not authorised, say).
        case refusedByRemote = "refused_by_remote"
    }

    public let name: String
    private let connectedFlag = Atomic<Bool>(false)
    private let remoteSlot = Atomic<Int>(-1)
    private let forwardedCount = Atomic<Int>(0)
    private let receivedCount = Atomic<Int>(0)
    private let pendingCount = Atomic<Int>(0)
    /// Rare events, so one lock for all reasons.
    private let drops = Mutex<[Int]>(Array(repeating: 0, count: DropReason.allCases.count))
    private let connectsCount = Atomic<Int>(0)

    public init(name: String) {
        self.name = name
    }

    public var isConnected: Bool { connectedFlag.load(ordering: .relaxed) }
    /// Index into the bridge's `remotes` of the broker it is connected to (-1 when none).
    public var remoteIndex: Int { remoteSlot.load(ordering: .relaxed) }
    /// Messages the remote acknowledged (QoS 1) or that were written to it (QoS 0).
    public var forwarded: Int { forwardedCount.load(ordering: .relaxed) }
    /// Remote messages published locally (`in` topics).
    public var received: Int { receivedCount.load(ordering: .relaxed) }
    /// QoS 1 messages the bridge holds from the local session, sent or waiting for the window.
    public var pending: Int { pendingCount.load(ordering: .relaxed) }
    public var connects: Int { connectsCount.load(ordering: .relaxed) }
    public func dropped(_ reason: DropReason) -> Int { drops.withLock { $0[index(reason)] } }

    func setConnected(_ remote: Int?) {
        connectedFlag.store(remote != nil, ordering: .relaxed)
        remoteSlot.store(remote ?? -1, ordering: .relaxed)
        if remote != nil { connectsCount.add(1, ordering: .relaxed) }
    }

    func addForwarded(_ n: Int = 1) { forwardedCount.add(n, ordering: .relaxed) }
    func addReceived(_ n: Int = 1) { receivedCount.add(n, ordering: .relaxed) }
    func setPending(_ n: Int) { pendingCount.store(n, ordering: .relaxed) }
    func addDropped(_ reason: DropReason, _ n: Int = 1) { drops.withLock { $0[index(reason)] += n } }

    private func index(_ reason: DropReason) -> Int { DropReason.allCases.firstIndex(of: reason)! }
}

/// What the bridge tells the broker about its link (for logs, the audit trail and alerts).
public enum BridgeEvent: Sendable, Equatable {
    case connected(remote: String)
    case disconnected(remote: String, reason: String)
    /// The remote broker answered CONNECT with a refusal (bad credentials, not authorised...).
    case refused(remote: String, reason: String)
    /// No remote could be reached in a round of attempts; the next round starts after `retryInMilliseconds`.
    case unreachable(reason: String, retryInMilliseconds: Int)
    /// A local subscription the bridge needs was not granted.
    case subscriptionRefused(filter: String, reason: String)
}
