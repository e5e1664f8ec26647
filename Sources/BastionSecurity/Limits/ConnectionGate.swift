import Synchronization

/// Connection admission limits (the `limits:` connection keys). A listener may carry its own.
public struct ConnectionLimits: Sendable, Hashable {
    /// Open connections at most, broker-wide (a listener's own value stops that listener earlier).
    public var maximumConnections: Int = 100_000
    /// Open connections at most from one source address.
    public var maximumConnectionsPerAddress: Int = 1_000
    /// New connections per second per source address (token bucket refill rate).
    public var connectRatePerAddress: Double = 100
    /// Bucket size: new connections one address may open at once before the rate applies.
    public var connectBurstPerAddress: Double = 200
    /// Addresses whose counters are remembered; beyond this, idle ones are forgotten first.
    public var maximumTrackedAddresses: Int = 100_000
    /// How often one address's refusals are reported (audit) at most.
    public var refusalReportInterval: Duration = .seconds(10)

    public init() {}
}

public enum RefusalReason: String, Sendable, Hashable {
    case banned
    case tooManyTotal = "too_many_total"
    case tooManyPerAddress = "too_many_per_address"
    case rateExceeded = "rate_exceeded"
}

public enum Admission: Sendable, Hashable {
    /// Accepted and counted: call `released(ip:)` exactly once when the socket closes.
    case allowed
    /// Close the socket now. `report` is true for the first refusal of this address and reason
    /// within `refusalReportInterval`, so a flood cannot flood the audit log.
    case refused(RefusalReason, report: Bool)
}

/// The first check on an accepted socket, before TLS or any credential work: bans, connection
/// counts (total and per address) and the per-address connect rate. Cheap: one lock, a few hash
/// lookups. Memory stays bounded when the sources are many (spoofed or a botnet): entries of
/// addresses with no open connection are forgotten first when the table is full.
public final class ConnectionGate: Sendable {
    private let clock: any LimitClock
    private let bans: BanList?
    private let state: Mutex<State>

    private struct Entry {
        var open = 0
        var bucket: TokenBucket
        var lastSeen: MonotonicInstant
        var lastReported: [RefusalReason: MonotonicInstant] = [:]
    }

    private struct State {
        var limits: ConnectionLimits
        var total = 0
        var entries: [IPAddress: Entry] = [:]
        /// Refusals of the broker-wide cap are reported per interval, not per address.
        var lastTotalReport: MonotonicInstant?
    }

    public init(limits: ConnectionLimits = ConnectionLimits(), bans: BanList? = nil, clock: any LimitClock = SystemLimitClock()) {
        self.clock = clock
        self.bans = bans
        self.state = Mutex(State(limits: limits))
    }

    public func updateLimits(_ limits: ConnectionLimits) {
        state.withLock { $0.limits = limits }
    }

    /// Decides whether a new socket from `ip` may proceed. `listenerLimits` overrides the
    /// thresholds for one listener; counts and rate state are shared across listeners. A
    /// `trusted` source (loopback, a TLS terminator) fronts many clients: only bans and the total
    /// cap apply to it, not the per-address count and rate.
    public func admit(ip: IPAddress, listenerLimits: ConnectionLimits? = nil, trusted: Bool = false) -> Admission {
        let now = clock.now()
        if bans?.isBanned(ip: ip) != nil {
            return state.withLock { state in
                .refused(.banned, report: Self.shouldReport(&state, ip: ip, reason: .banned, now: now))
            }
        }
        return state.withLock { state in
            let limits = listenerLimits ?? state.limits
            let global = state.limits
            if state.total >= min(limits.maximumConnections, global.maximumConnections) {
                let report = state.lastTotalReport.map { now - $0 >= limits.refusalReportInterval } ?? true
                if report { state.lastTotalReport = now }
                return .refused(.tooManyTotal, report: report)
            }
            if trusted {
                state.total += 1
                return .allowed
            }
            if state.entries[ip] == nil, state.entries.count >= global.maximumTrackedAddresses {
                Self.evict(&state, now: now)
            }
            var entry = state.entries[ip] ?? Entry(bucket: TokenBucket(capacity: limits.connectBurstPerAddress, now: now), lastSeen: now)
            entry.lastSeen = now
            if entry.open >= limits.maximumConnectionsPerAddress {
                state.entries[ip] = entry
                return .refused(.tooManyPerAddress, report: Self.shouldReport(&state, ip: ip, reason: .tooManyPerAddress, now: now))
            }
            guard entry.bucket.take(rate: limits.connectRatePerAddress, capacity: limits.connectBurstPerAddress, now: now) else {
                state.entries[ip] = entry
                return .refused(.rateExceeded, report: Self.shouldReport(&state, ip: ip, reason: .rateExceeded, now: now))
            }
            entry.open += 1
            state.total += 1
            state.entries[ip] = entry
            return .allowed
        }
    }

    /// A socket admitted by `admit(ip:)` closed.
    public func released(ip: IPAddress) {
        state.withLock { state in
            state.total = max(0, state.total - 1)
            guard var entry = state.entries[ip] else { return }
            entry.open = max(0, entry.open - 1)
            state.entries[ip] = entry
        }
    }

    public var openConnections: Int { state.withLock { $0.total } }

    public func openConnections(from ip: IPAddress) -> Int { state.withLock { $0.entries[ip]?.open ?? 0 } }

    public var trackedAddresses: Int { state.withLock { $0.entries.count } }

    /// Forgets addresses with nothing open and a full bucket. Optional; the table also trims
    /// itself when full.
    public func sweep() {
        let now = clock.now()
        state.withLock { state in
            let limits = state.limits
            state.entries = state.entries.filter { _, entry in
                entry.open > 0 || !entry.bucket.isFull(rate: limits.connectRatePerAddress, capacity: limits.connectBurstPerAddress, now: now)
                    || entry.lastReported.values.contains { now - $0 < limits.refusalReportInterval }
            }
        }
    }

    private static func shouldReport(_ state: inout State, ip: IPAddress, reason: RefusalReason, now: MonotonicInstant) -> Bool {
        let interval = state.limits.refusalReportInterval
        if state.entries[ip] == nil {
            if state.entries.count >= state.limits.maximumTrackedAddresses { evict(&state, now: now) }
            state.entries[ip] = Entry(bucket: TokenBucket(capacity: state.limits.connectBurstPerAddress, now: now), lastSeen: now)
        }
        if let last = state.entries[ip]?.lastReported[reason], now - last < interval { return false }
        state.entries[ip]?.lastReported[reason] = now
        return true
    }

    /// Makes room: first every idle entry whose bucket has refilled, then, if the table is still
    /// full, the least recently seen half of the entries with nothing open. Entries with open
    /// connections are never dropped (their number is bounded by the connection cap).
    private static func evict(_ state: inout State, now: MonotonicInstant) {
        let limits = state.limits
        state.entries = state.entries.filter { _, entry in
            entry.open > 0 || !entry.bucket.isFull(rate: limits.connectRatePerAddress, capacity: limits.connectBurstPerAddress, now: now)
        }
        guard state.entries.count >= limits.maximumTrackedAddresses else { return }
        let idle = state.entries.filter { $0.value.open == 0 }.sorted { $0.value.lastSeen < $1.value.lastSeen }
        for (ip, _) in idle.prefix(max(1, idle.count / 2)) { state.entries[ip] = nil }
    }
}
