import Synchronization

/// Alert thresholds: events per `window` (nil or 0: no alert of that kind).
public struct AlertPolicy: Sendable, Hashable {
    public var connections: Int? = nil
    public var authFailures: Int? = nil
    public var aclDenials: Int? = nil
    public var window: Duration = .seconds(60)

    public init() {}

    func threshold(_ kind: Alert.Kind) -> Int? {
        let value = switch kind {
        case .connectionRate: connections
        case .authFailures: authFailures
        case .aclDenials: aclDenials
        case .banSuppressed, .userThrottled, .sessionDropping, .backendUnavailable, .sparkplugAnomaly, .bridgeRefused, .bridgeQueueFull: nil as Int?
        }
        return value.flatMap { $0 > 0 ? $0 : nil }
    }
}

/// A threshold crossing, written to the audit log and published on `$SYS/bastion/alerts`.
public struct Alert: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case connectionRate = "connection_rate"
        case authFailures = "auth_failures"
        case aclDenials = "acl_denials"
        // Raised by one event each, not by a threshold (see `Alert.event`).
        /// An automatic address ban was not applied: the address is in `trusted_networks`.
        case banSuppressed = "ban_suppressed"
        /// A user name reached its failure threshold and is throttled for the failing sources.
        case userThrottled = "user_throttled"
        /// A session started dropping messages it could not keep (offline queue full).
        case sessionDropping = "session_dropping"
        /// An identity backend could not answer (down, slow, garbage); logins it would have
        /// decided are refused (fail closed).
        case backendUnavailable = "backend_unavailable"
        /// A Sparkplug edge node broke a session rule the server checks (data before birth, a
        /// bdSeq that does not match, a seq gap); raised once per edge node and kind per window.
        case sparkplugAnomaly = "sparkplug_anomaly"
        /// A remote broker refused a bridge's CONNECT (bad credentials, not authorised); the
        /// bridge backs off and tries again.
        case bridgeRefused = "bridge_refused"
        /// A bridge's store-and-forward queue is full: its oldest messages are being dropped.
        case bridgeQueueFull = "bridge_queue_full"
    }

    public var kind: Kind
    /// Events counted in the window when the alert fired.
    public var count: Int
    public var threshold: Int
    public var window: Duration
    /// What the alert is about (an address, a user name, a client id), for event alerts.
    public var subject: String?

    public init(kind: Kind, count: Int, threshold: Int, window: Duration, subject: String? = nil) {
        self.kind = kind
        self.count = count
        self.threshold = threshold
        self.window = window
        self.subject = subject
    }

    /// An alert raised by a single event.
    public static func event(_ kind: Kind, subject: String) -> Alert {
        Alert(kind: kind, count: 1, threshold: 1, window: .zero, subject: subject)
    }
}

/// Sliding-window event counters with thresholds. Each kind fires at most once per window. The
/// window count is the sliding-window estimate (the previous fixed window weighted by its overlap
/// plus the current one): constant memory, exact enough for alerting.
public final class AlertMonitor: Sendable {
    private let clock: any LimitClock
    private let state: Mutex<State>

    private struct Counter {
        var windowStart: MonotonicInstant
        var current = 0
        var previous = 0
        var lastFired: MonotonicInstant?
    }

    private struct State {
        var policy: AlertPolicy
        var counters: [Alert.Kind: Counter] = [:]
    }

    public init(policy: AlertPolicy = AlertPolicy(), clock: any LimitClock = SystemLimitClock()) {
        self.clock = clock
        self.state = Mutex(State(policy: policy))
    }

    public func updatePolicy(_ policy: AlertPolicy) {
        state.withLock { $0 = State(policy: policy) }
    }

    /// Counts `n` events of `kind`; returns an alert when this crosses the threshold and none of
    /// this kind fired within the last window.
    public func record(_ kind: Alert.Kind, count n: Int = 1) -> Alert? {
        let now = clock.now()
        return state.withLock { state in
            guard let threshold = state.policy.threshold(kind) else { return nil }
            let window = state.policy.window
            guard window > .zero else { return nil }
            var counter = state.counters[kind] ?? Counter(windowStart: now)
            // Roll fixed windows forward.
            let elapsed = now - counter.windowStart
            if elapsed >= window {
                let windows = Int(elapsed.seconds / window.seconds)
                counter.previous = windows == 1 ? counter.current : 0
                counter.current = 0
                counter.windowStart = counter.windowStart + .clampedSeconds(Double(windows) * window.seconds)
            }
            counter.current += max(0, n)
            let overlap = 1 - min(1, max(0, (now - counter.windowStart).seconds / window.seconds))
            let estimate = counter.current + Int((Double(counter.previous) * overlap).rounded(.down))
            var alert: Alert?
            if estimate >= threshold, counter.lastFired.map({ now - $0 >= window }) ?? true {
                counter.lastFired = now
                alert = Alert(kind: kind, count: estimate, threshold: threshold, window: window)
            }
            state.counters[kind] = counter
            return alert
        }
    }
}
