import BastionCore

/// The ordered list of identity backends (`auth.backends`, with the password file as `file`).
/// Each backend that applies to a request is asked in turn; the first `allow` or `deny` decides.
/// A backend that cannot answer — down, slower than its `timeout`, answering garbage — ends the
/// chain with a refusal (fail closed) and an alert; it is never skipped, since skipping it
/// would let a later backend, or the lack of one, decide for users it alone knows. A backend
/// whose queue is full ends the chain with "server busy".
public final class IdentityChain: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Calls in progress at once for this backend.
        public var maximumConcurrent: Int
        /// Calls waiting for a slot; more are refused with "server busy".
        public var maximumQueued: Int
        /// Longest a call may take, waiting for a slot included.
        public var timeout: Duration

        public init(maximumConcurrent: Int = 16, maximumQueued: Int = 256, timeout: Duration = .seconds(5)) {
            self.maximumConcurrent = maximumConcurrent
            self.maximumQueued = maximumQueued
            self.timeout = timeout
        }
    }

    public struct Member: Sendable {
        public var backend: any IdentityBackend
        public var limits: Limits

        public init(_ backend: any IdentityBackend, limits: Limits = Limits()) {
            self.backend = backend
            self.limits = limits
        }
    }

    public enum Outcome: Sendable, Equatable {
        case allowed(BackendGrant, by: String)
        case denied(BackendDenial, by: String)
        /// No backend knew the user.
        case unknown
        case unavailable(backend: String, reason: String)
        case busy(backend: String)
    }

    private struct Slot: Sendable {
        let member: Member
        let limiter: ConcurrencyLimiter
    }

    private let slots: [Slot]
    let alerts: BackendAlerts
    /// Runs when no backend knew the user, so that answer costs what a wrong password costs.
    let unknownUserCost: (@Sendable (AuthenticationRequest) async -> Void)?

    public init(_ members: [Member], alerts: BackendAlerts = .silent(),
                unknownUserCost: (@Sendable (AuthenticationRequest) async -> Void)? = nil) {
        self.slots = members.map { Slot(member: $0, limiter: ConcurrencyLimiter(
            maximumConcurrent: $0.limits.maximumConcurrent, maximumQueued: $0.limits.maximumQueued)) }
        self.alerts = alerts
        self.unknownUserCost = unknownUserCost
    }

    public var backendNames: [String] { slots.map(\.member.backend.name) }
    public var backends: [any IdentityBackend] { slots.map(\.member.backend) }

    /// Whether any backend looks at this request at all (certificate-only clients, for example,
    /// are decided by the transport unless a backend asks for them).
    public func anyApplies(to request: AuthenticationRequest) -> Bool {
        slots.contains { $0.member.backend.applies(to: request) }
    }

    public func evaluate(_ request: AuthenticationRequest) async -> Outcome {
        for slot in slots {
            let backend = slot.member.backend
            guard backend.applies(to: request) else { continue }
            let limiter = slot.limiter
            let result = await withDeadline(slot.member.limits.timeout) { () async -> CallResult in
                switch await limiter.acquire() {
                case .busy: return .busy
                case .cancelled: return .timedOut
                case .acquired: break
                }
                defer { limiter.release() }
                return .decided(await backend.decide(request))
            }
            switch result ?? .timedOut {
            case .busy:
                alerts.busy(backend.name)
                return .busy(backend: backend.name)
            case .timedOut:
                let reason = "no answer within \(slot.member.limits.timeout)"
                alerts.unavailable(backend.name, reason: reason)
                return .unavailable(backend: backend.name, reason: reason)
            case .decided(.allow(let grant)):
                if let problem = GrantValidation.problem(grant) {
                    alerts.unavailable(backend.name, reason: "answered with \(problem)")
                    return .unavailable(backend: backend.name, reason: "answered with \(problem)")
                }
                return .allowed(grant, by: backend.name)
            case .decided(.deny(let denial)):
                return .denied(denial, by: backend.name)
            case .decided(.noOpinion):
                continue
            case .decided(.unavailable(let reason)):
                alerts.unavailable(backend.name, reason: reason)
                return .unavailable(backend: backend.name, reason: reason)
            }
        }
        await unknownUserCost?(request)
        return .unknown
    }

    public enum Limited<T: Sendable>: Sendable {
        case done(T)
        case busy
        case timedOut
    }

    /// Runs `work` under the concurrency limit and deadline of the backend called `name` (other
    /// calls into a backend than `decide`, e.g. SCRAM lookups); without such a backend, as is.
    public func limited<T: Sendable>(_ name: String, _ work: @escaping @Sendable () async -> T) async -> Limited<T> {
        guard let slot = slots.first(where: { $0.member.backend.name == name }) else { return .done(await work()) }
        let limiter = slot.limiter
        let result = await withDeadline(slot.member.limits.timeout) { () async -> Limited<T> in
            switch await limiter.acquire() {
            case .busy: return .busy
            case .cancelled: return .timedOut
            case .acquired: break
            }
            defer { limiter.release() }
            return .done(await work())
        }
        return result ?? .timedOut
    }

    /// Shuts every backend down (a reload replaced the chain).
    public func shutdown() async {
        for slot in slots { await slot.member.backend.shutdown() }
    }

    private enum CallResult: Sendable {
        case decided(BackendDecision)
        case busy
        case timedOut
    }
}
