import Synchronization

/// Who a ban applies to.
public enum BanSubject: Hashable, Sendable, CustomStringConvertible {
    /// A single address (a /32 or /128 block) or a CIDR block.
    case address(IPRange)
    case username(String)
    case clientID(String)

    /// "ip", "cidr", "username" or "client_id" (the `subject_type` of audit records and the API).
    public var kind: String {
        switch self {
        case .address(let range): range.isSingleAddress ? "ip" : "cidr"
        case .username: "username"
        case .clientID: "client_id"
        }
    }

    public var value: String {
        switch self {
        case .address(let range): range.description
        case .username(let name): name
        case .clientID(let id): id
        }
    }

    public var description: String { "\(kind) \(value)" }

    public static func ip(_ address: IPAddress) -> BanSubject { .address(IPRange(address)) }

    /// From an API or CLI pair: kind "ip"/"cidr"/"address" (either form), "username"/"user", "client_id".
    public init?(kind: String, value: String) {
        switch kind {
        case "ip", "cidr", "address":
            guard let range = IPRange(value) else { return nil }
            self = .address(range)
        case "username", "user":
            guard !value.isEmpty else { return nil }
            self = .username(value)
        case "client_id", "client":
            guard !value.isEmpty else { return nil }
            self = .clientID(value)
        default:
            return nil
        }
    }
}

/// Why a ban exists.
public enum BanOrigin: String, Sendable, Hashable {
    /// Listed in the configuration file: permanent until the file changes.
    case config
    /// Added by an operator (admin API / `bastion ban add`).
    case manual
    /// Too many failed authentications.
    case authFailures = "auth_failures"
    /// A client id connecting and dropping in a tight loop.
    case flapping
    /// Malformed or non-MQTT traffic before CONNECT, or connections that never sent CONNECT.
    case protocolViolations = "protocol_violations"
}

public struct BanEntry: Sendable, Hashable {
    public var subject: BanSubject
    public var origin: BanOrigin
    /// Operator-written note for config and manual bans.
    public var note: String?
    public var since: MonotonicInstant
    /// Nil: until removed.
    public var expires: MonotonicInstant?
    /// Automatic bans: which offence this is for the subject (drives the back-off).
    public var offence: Int

    public init(subject: BanSubject, origin: BanOrigin, note: String?, since: MonotonicInstant, expires: MonotonicInstant?, offence: Int) {
        self.subject = subject
        self.origin = origin
        self.note = note
        self.since = since
        self.expires = expires
        self.offence = offence
    }

    public var isPermanent: Bool { expires == nil }

    public var duration: Duration? { expires.map { $0 - since } }

    public func remaining(at now: MonotonicInstant) -> Duration? {
        expires.map { max(.zero, $0 - now) }
    }

    func isActive(at now: MonotonicInstant) -> Bool {
        expires.map { now < $0 } ?? true
    }
}

/// How automatic bans grow: `initial` for a first offence, doubling per repeat offence up to
/// `maximum`. A subject that stays clean for `forgetAfter` after its last ban starts over.
public struct BanPolicy: Sendable, Hashable {
    public var initial: Duration = .seconds(60)
    public var maximum: Duration = .seconds(3600)
    public var forgetAfter: Duration = .seconds(24 * 3600)
    /// Bound on remembered offenders (oldest forgotten first), and on automatic bans in force.
    public var maximumOffenders: Int = 65_536
    /// Sources that front other clients or are the host itself (loopback, a local TLS terminator):
    /// automatic address bans never apply to them, so one misbehaving client behind them cannot
    /// take every client offline. Operator bans still apply.
    public var trustedNetworks: [IPRange] = BanPolicy.defaultTrustedNetworks

    public static let defaultTrustedNetworks = [IPRange("127.0.0.1/32")!, IPRange("::1/128")!]

    public init() {}

    public func isTrusted(_ address: IPAddress) -> Bool {
        trustedNetworks.contains { $0.contains(address) }
    }

    /// Duration of the `offence`-th automatic ban (1-based).
    public func duration(forOffence offence: Int) -> Duration {
        let doublings = max(0, min(offence - 1, 40))
        let scaled = initial.seconds * Double(1 << doublings)
        return min(.clampedSeconds(scaled), max(initial, maximum))
    }
}

public enum UnbanCause: String, Sendable, Hashable {
    case expired
    /// Removed by an operator.
    case removed
    /// No longer in the configuration file after a reload.
    case configReload = "config_reload"
}

public enum BanEvent: Sendable, Hashable {
    case banned(BanEntry)
    case unbanned(BanSubject, UnbanCause)
    /// An automatic ban that was not applied because the address is in a trusted network.
    case suppressed(BanSubject, BanOrigin)
}

public enum UnbanResult: Sendable, Hashable {
    case removed
    case notFound
    /// Listed in the configuration file: edit the file and reload instead.
    case configured
}

/// Banned addresses, address blocks, user names and client ids. Configuration bans are permanent;
/// dynamic bans (operator or automatic) may expire. Automatic bans back off exponentially per
/// offender. Lookups are cheap (hash lookups plus a scan of the few CIDR bans) because the address
/// check runs for every accepted socket, before any TLS or password work.
///
/// Every change is reported through the event handler (called outside the lock), so audit and
/// metrics see bans, expiries and removals.
public final class BanList: Sendable {
    private let clock: any LimitClock
    private let state: Mutex<State>
    private let handler: Mutex<(@Sendable (BanEvent) -> Void)?>

    struct State {
        var policy: BanPolicy
        var configured: [BanSubject: BanEntry] = [:]
        var dynamic: [BanSubject: BanEntry] = [:]
        /// Non-single-address blocks present in either table, scanned for address lookups.
        var ranges: [IPRange] = []
        var offenders: [BanSubject: (count: Int, last: MonotonicInstant)] = [:]

        mutating func rebuildRanges() {
            var set = Set<IPRange>()
            for subject in configured.keys { if case .address(let r) = subject, !r.isSingleAddress { set.insert(r) } }
            for subject in dynamic.keys { if case .address(let r) = subject, !r.isSingleAddress { set.insert(r) } }
            ranges = Array(set)
        }

        /// The active entry for `subject`, dropping (and reporting) an expired dynamic one.
        mutating func active(_ subject: BanSubject, now: MonotonicInstant, events: inout [BanEvent]) -> BanEntry? {
            if let entry = configured[subject] { return entry }
            guard let entry = dynamic[subject] else { return nil }
            if entry.isActive(at: now) { return entry }
            dynamic[subject] = nil
            if case .address(let r) = subject, !r.isSingleAddress { rebuildRanges() }
            events.append(.unbanned(subject, .expired))
            return nil
        }
    }

    public init(policy: BanPolicy = BanPolicy(), clock: any LimitClock = SystemLimitClock(),
                onEvent: (@Sendable (BanEvent) -> Void)? = nil) {
        self.clock = clock
        self.state = Mutex(State(policy: policy))
        self.handler = Mutex(onEvent)
    }

    /// Installs (or replaces) the event handler, e.g. once the audit log exists.
    public func setEventHandler(_ onEvent: (@Sendable (BanEvent) -> Void)?) {
        handler.withLock { $0 = onEvent }
    }

    public func updatePolicy(_ policy: BanPolicy) {
        state.withLock { $0.policy = policy }
    }

    private func emit(_ events: [BanEvent]) {
        guard !events.isEmpty, let handler = handler.withLock({ $0 }) else { return }
        for event in events { handler(event) }
    }

    private func locked<T: Sendable>(_ body: (inout State, MonotonicInstant, inout [BanEvent]) -> T) -> T {
        let now = clock.now()
        var events: [BanEvent] = []
        let result = state.withLock { body(&$0, now, &events) }
        emit(events)
        return result
    }

    // MARK: Lookups

    /// The ban covering `ip` (its own or a block containing it), if any.
    public func isBanned(ip: IPAddress) -> BanEntry? {
        locked { state, now, events in
            if let entry = state.active(.ip(ip), now: now, events: &events) { return entry }
            for range in state.ranges where range.contains(ip) {
                if let entry = state.active(.address(range), now: now, events: &events) { return entry }
            }
            return nil
        }
    }

    public func isBanned(username: String) -> BanEntry? {
        locked { state, now, events in state.active(.username(username), now: now, events: &events) }
    }

    public func isBanned(clientID: String) -> BanEntry? {
        locked { state, now, events in state.active(.clientID(clientID), now: now, events: &events) }
    }

    /// The first ban that refuses this CONNECT: address, then user name, then client id.
    public func isBanned(ip: IPAddress?, username: String?, clientID: String?) -> BanEntry? {
        if let ip, let entry = isBanned(ip: ip) { return entry }
        if let username, let entry = isBanned(username: username) { return entry }
        if let clientID, let entry = isBanned(clientID: clientID) { return entry }
        return nil
    }

    /// Active bans, configured first, then by subject.
    public func list() -> [BanEntry] {
        locked { state, now, events in
            for (subject, entry) in state.dynamic where !entry.isActive(at: now) {
                state.dynamic[subject] = nil
                events.append(.unbanned(subject, .expired))
            }
            state.rebuildRanges()
            let configured = state.configured.values.sorted { $0.subject.description < $1.subject.description }
            let dynamic = state.dynamic.values
                .filter { state.configured[$0.subject] == nil }
                .sorted { $0.subject.description < $1.subject.description }
            return configured + dynamic
        }
    }

    public var activeCount: Int { list().count }

    /// Drops expired bans and forgotten offenders; reports expiries. Call periodically.
    public func sweep() {
        locked { state, now, events in
            for (subject, entry) in state.dynamic where !entry.isActive(at: now) {
                state.dynamic[subject] = nil
                events.append(.unbanned(subject, .expired))
            }
            state.rebuildRanges()
            let forget = state.policy.forgetAfter
            state.offenders = state.offenders.filter { now - $0.value.last < forget }
        }
    }

    // MARK: Changes

    /// An operator's ban: `duration` nil means until removed. Replaces a dynamic ban of the same
    /// subject; a configured ban stays as it is.
    @discardableResult
    public func ban(_ subject: BanSubject, duration: Duration?, note: String? = nil) -> BanEntry {
        locked { state, now, events in
            if let existing = state.configured[subject] { return existing }
            let entry = BanEntry(subject: subject, origin: .manual, note: note, since: now,
                                 expires: duration.map { now + $0 }, offence: 0)
            state.dynamic[subject] = entry
            state.rebuildRanges()
            events.append(.banned(entry))
            return entry
        }
    }

    /// An automatic ban with exponential back-off. Returns nil when the subject is already banned
    /// (late failures of connections that were in flight must not extend the ban).
    @discardableResult
    public func punish(_ subject: BanSubject, origin: BanOrigin) -> BanEntry? {
        locked { state, now, events in
            if case .address(let range) = subject, state.policy.isTrusted(range.base) {
                events.append(.suppressed(subject, origin))
                return nil
            }
            if state.active(subject, now: now, events: &events) != nil { return nil }
            if case .address(let range) = subject, range.isSingleAddress {
                for block in state.ranges where block.contains(range.base) {
                    if state.active(.address(block), now: now, events: &events) != nil { return nil }
                }
            }
            var offence = 1
            if let previous = state.offenders[subject], now - previous.last < state.policy.forgetAfter {
                offence = previous.count + 1
            }
            if state.offenders[subject] == nil, state.offenders.count >= state.policy.maximumOffenders {
                let oldest = state.offenders.sorted { $0.value.last < $1.value.last }.prefix(max(1, state.offenders.count / 2))
                for (key, _) in oldest { state.offenders[key] = nil }
            }
            let duration = state.policy.duration(forOffence: offence)
            if state.dynamic.count >= state.policy.maximumOffenders {
                // Full of automatic bans (a flood of offenders): the ones ending soonest make room.
                let automatic = state.dynamic.filter { $0.value.origin != .manual }.sorted { ($0.value.expires ?? now) < ($1.value.expires ?? now) }
                for (key, _) in automatic.prefix(max(1, automatic.count / 2)) { state.dynamic[key] = nil }
            }
            let entry = BanEntry(subject: subject, origin: origin, note: nil, since: now, expires: now + duration, offence: offence)
            state.offenders[subject] = (offence, now + duration)
            state.dynamic[subject] = entry
            state.rebuildRanges()
            events.append(.banned(entry))
            return entry
        }
    }

    /// Removes a dynamic ban. Configured bans cannot be removed here.
    @discardableResult
    public func unban(_ subject: BanSubject) -> UnbanResult {
        locked { state, now, events in
            if state.configured[subject] != nil { return .configured }
            guard let entry = state.dynamic.removeValue(forKey: subject) else { return .notFound }
            state.rebuildRanges()
            // An expired entry is reported as such, not as a removal.
            events.append(.unbanned(subject, entry.isActive(at: now) ? .removed : .expired))
            return entry.isActive(at: now) ? .removed : .notFound
        }
    }

    /// Replaces the configured bans (startup and reload); reports what was added and removed.
    public func setConfigured(_ bans: [(subject: BanSubject, note: String?)]) {
        locked { state, now, events in
            var next: [BanSubject: BanEntry] = [:]
            for ban in bans {
                let entry = state.configured[ban.subject].map { var e = $0; e.note = ban.note; return e }
                    ?? BanEntry(subject: ban.subject, origin: .config, note: ban.note, since: now, expires: nil, offence: 0)
                next[ban.subject] = entry
            }
            for subject in state.configured.keys where next[subject] == nil {
                events.append(.unbanned(subject, .configReload))
            }
            for (subject, entry) in next where state.configured[subject] == nil {
                events.append(.banned(entry))
            }
            state.configured = next
            state.rebuildRanges()
        }
    }
}
