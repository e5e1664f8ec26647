import BastionCore
import Foundation
import NIOCore
import Synchronization

/// The abuse-protection pieces built from `ProtectionSettings` and connected to each other and to
/// the audit log and metrics, so the server calls one method per event:
///
/// | when | call |
/// |---|---|
/// | a socket is accepted (before TLS) | `admit(remote:listener:listenerIndex:)`; false → close it |
/// | that socket closes | `closed(remote:)` (exactly once per admitted socket) |
/// | bad bytes before CONNECT, no CONNECT in time | `preConnectViolation(remote:)` |
/// | CONNECT, before authentication | `bannedIdentity(username:clientID:)`, `isThrottled(remote:username:)` |
/// | authentication fails | `authenticationFailed(_:weight:)` |
/// | a client is accepted | `connectionAccepted(_:)`, `authenticationSucceeded(remote:username:)` |
/// | a session's connection ends | `sessionEnded(clientID:duration:clean:)` |
/// | the ACL denies | `authorizationDenied(_:)` |
/// | a limit stops something | `limitReached(_:)` |
/// | a client connects | `publishRateLimiter(listenerIndex:now:)` for its inbound PUBLISH |
/// | periodically | `sweep()` |
/// | reload | `reload(_:path:)` / `reloadRejected(path:error:)` |
///
/// Bans, alerts and refusals reach the audit log and the metrics from here; alerts are also handed
/// to `onAlert` for publication on `$SYS/bastion/alerts`.
public final class AbuseProtection: Sendable {
    public let bans: BanList
    public let gate: ConnectionGate
    public let authFailures: AuthFailureTracker
    public let flapping: FlapDetector
    public let alerts: AlertMonitor
    public let audit: AuditLog
    public let metrics: (any ProtectionMetrics)?
    private let clock: any LimitClock
    private let onAlert: @Sendable (Alert, _ payload: String) -> Void
    private let banObserver = BanObserver()
    private let policies: Mutex<Policies>

    private struct Policies {
        var listenerLimits: [ConnectionLimits?]
        var publishRate: PublishRatePolicy
        var listenerPublishRates: [PublishRatePolicy?]
        var banPolicy: BanPolicy
    }

    /// - Parameter onAlert: receives each alert and its JSON payload (publish it retained-free on
    ///   `$SYS/bastion/alerts`). Called on the thread that recorded the triggering event.
    public init(settings: ProtectionPolicy, audit: AuditLog, metrics: (any ProtectionMetrics)?, clock: any LimitClock = SystemLimitClock(),
                onAlert: @escaping @Sendable (Alert, _ payload: String) -> Void = { _, _ in }) {
        self.clock = clock
        self.audit = audit
        self.metrics = metrics
        self.onAlert = onAlert
        let bans = BanList(policy: settings.banPolicy, clock: clock)
        self.bans = bans
        self.gate = ConnectionGate(limits: settings.connectionLimits, bans: bans, clock: clock)
        self.authFailures = AuthFailureTracker(policy: settings.authFailures, bans: bans, clock: clock)
        self.flapping = FlapDetector(policy: settings.flapping, bans: bans, clock: clock)
        self.alerts = AlertMonitor(policy: settings.alerts, clock: clock)
        self.policies = Mutex(Policies(
            listenerLimits: settings.listenerConnectionLimits, publishRate: settings.publishRate,
            listenerPublishRates: settings.listenerPublishRates, banPolicy: settings.banPolicy))
        // Configured bans apply from the first accepted socket; their audit records follow `start`.
        bans.setConfigured(settings.configuredBans)
        metrics?.setActiveBans(bans.activeCount)
        let banObserver = self.banObserver
        bans.setEventHandler { [audit, metrics, bans, onAlert] event in
            audit.record(AuditEvent(event))
            if case .banned(let entry) = event, entry.origin == .manual || entry.origin == .config {
                banObserver.value.withLock { $0 }?(entry)
            }
            metrics?.banEvent(event, activeBans: bans.activeCount)
            if case .suppressed(let subject, _) = event {
                // Still worth a look: something behind a trusted address is misbehaving.
                let alert = Alert.event(.banSuppressed, subject: subject.description)
                audit.record(.alert(.init(alert)))
                metrics?.alertRaised(alert.kind)
                onAlert(alert, alert.payload())
            }
        }
    }

    /// Called with each ban an operator adds (admin API, `bastion ban`, a reloaded configuration), so
    /// clients it covers that are connected now are disconnected too.
    public func observeOperatorBans(_ observer: @escaping @Sendable (BanEntry) -> Void) {
        banObserver.value.withLock { $0 = observer }
    }

    /// Whether `ip` is in `trusted_networks`.
    public func isTrusted(_ ip: IPAddress) -> Bool {
        policies.withLock { $0.banPolicy.isTrusted(ip) }
    }

    // MARK: Accept and close

    /// The accept-time check. True: proceed (TLS, MQTT) and call `closed` when the socket closes.
    /// False: close the socket now; refusal audit and metrics are done.
    public func admit(remote: SocketAddress?, listener: String, listenerIndex: Int) -> Bool {
        guard let ip = IPAddress(remote) else { return true }  // Unix sockets: nothing to key on
        let (listenerLimits, trusted) = policies.withLock { p in
            (listenerIndex < p.listenerLimits.count ? p.listenerLimits[listenerIndex] : nil, p.banPolicy.isTrusted(ip))
        }
        switch gate.admit(ip: ip, listenerLimits: listenerLimits, trusted: trusted) {
        case .allowed:
            raise(alerts.record(.connectionRate))
            return true
        case .refused(let reason, let report):
            metrics?.connectionRefused(reason)
            if report {
                let peer = AuditPeer(listener: listener, ip: ip.description, port: remote?.port)
                audit.record(.connectionRefused(.init(peer: peer, reason: reason)))
            }
            return false
        }
    }

    /// A socket that `admit` let through closed.
    public func closed(remote: SocketAddress?) {
        guard let ip = IPAddress(remote) else { return }
        gate.released(ip: ip)
    }

    /// Evidence of an attack before CONNECT: bytes that are not MQTT, a malformed or oversized
    /// CONNECT, a TLS or WebSocket handshake that failed or stalled, or no CONNECT in time
    /// (half-open floods). Enough of them ban the address (never a trusted one).
    public func preConnectViolation(remote: SocketAddress?) {
        guard let ip = IPAddress(remote) else { return }
        authFailures.violation(ip: ip)
    }

    // MARK: CONNECT

    /// A ban on the user name or client id of a CONNECT (address bans were checked at accept).
    /// Refuse with CONNACK 0x8A (5.0) / 0x05 — 0x9F / 0x03 for a flapping client id — and report
    /// `authenticationFailed(... .banned)`.
    public func bannedIdentity(username: String?, clientID: String?) -> BanEntry? {
        bans.isBanned(ip: nil, username: username, clientID: clientID)
    }

    /// Whether `username` is throttled for this source after repeated failures (refuse before
    /// checking the password).
    /// A trusted source fronts many clients, so it cannot be told apart from the failing ones:
    /// throttling it would lock the user out for everyone behind it.
    public func isThrottled(remote: SocketAddress?, username: String?) -> Bool {
        let ip = IPAddress(remote)
        if let ip, isTrusted(ip) { return false }
        return authFailures.isThrottled(ip: ip, username: username)
    }

    /// Counts towards brute-force bans and alerts (as `weight` says), and writes the audit record.
    public func authenticationFailed(_ failure: AuditEvent.AuthFailure, weight: AuthFailureWeight) {
        audit.record(.authFailure(failure))
        metrics?.authFailed()
        let ip = failure.peer.ip.flatMap { IPAddress($0) }
        let outcome = authFailures.failed(ip: ip, username: failure.username, weight: weight)
        if outcome.userThrottled, let username = failure.username {
            raise(.event(.userThrottled, subject: "username \(username)"))
        }
        raise(alerts.record(.authFailures))
        metrics?.failureTracker(authFailures.usage)
    }

    /// A client authenticated as `username` from `remote`: that source is not throttled for it.
    public func authenticationSucceeded(remote: SocketAddress?, username: String?) {
        authFailures.succeeded(ip: IPAddress(remote), username: username)
    }

    /// A session's connection ended after `duration` (from CONNACK); `clean` when it ended with
    /// DISCONNECT. A client id that keeps ending short sessions uncleanly is backed off.
    public func sessionEnded(clientID: String, duration: Duration, clean: Bool) {
        flapping.sessionEnded(clientID: clientID, duration: duration, clean: clean)
    }

    /// An identity backend could not answer; the logins it would have decided were refused.
    /// The caller limits how often this is raised per backend.
    public func backendUnavailable(_ backend: String) {
        raise(.event(.backendUnavailable, subject: "backend \(backend)"))
    }

    /// A session began dropping messages it could not keep.
    public func sessionDropping(clientID: String) {
        raise(.event(.sessionDropping, subject: "client_id \(clientID)"))
    }

    public func sparkplugCommand(_ command: AuditEvent.SparkplugCommand) {
        audit.record(.sparkplugCommand(command))
    }

    public func sparkplugPayloadInvalid(_ invalid: AuditEvent.SparkplugPayloadInvalid) {
        audit.record(.sparkplugPayloadInvalid(invalid))
    }

    /// A bridge's link changed state; refusals and a full queue also raise an alert.
    public func bridgeEvent(_ event: AuditEvent.BridgeLink) {
        audit.record(.bridge(event))
        switch event.kind {
        case .refused:
            raise(.event(.bridgeRefused, subject: "bridge \(event.bridge) refused by \(event.remote ?? "?"): \(event.reason ?? "")"))
        case .queueFull:
            raise(.event(.bridgeQueueFull, subject: "bridge \(event.bridge)"))
        case .connected, .disconnected, .unreachable:
            break
        }
    }

    /// `subject` names the edge node and what it did; the caller rate-limits.
    public func sparkplugAnomaly(subject: String) {
        raise(.event(.sparkplugAnomaly, subject: subject))
    }

    /// Records a refused session takeover by another identity.
    public func sessionHijackRefused(_ refused: AuditEvent.SessionHijackRefused) {
        audit.record(.sessionHijackRefused(refused))
        metrics?.authFailed()
    }

    public func connectionAccepted(_ accepted: AuditEvent.ConnectionAccepted) {
        audit.record(.connectionAccepted(accepted))
    }

    public func authorizationDenied(_ denied: AuditEvent.AuthorizationDenied) {
        audit.record(.authorizationDenied(denied))
        metrics?.aclDenied(denied.operation)
        raise(alerts.record(.aclDenials))
    }

    /// Audit and count a limit. For limits that can repeat per message (publish rate, queues),
    /// report the first occurrence per connection and count the rest with `metrics`.
    public func limitReached(_ reached: AuditEvent.LimitReached) {
        audit.record(.limitReached(reached))
        metrics?.limitReached(reached.limit)
        if reached.limit == .publishRate, reached.action == .throttled { metrics?.publishThrottled() }
    }

    /// The publish rate limiter for a new connection on listener `listenerIndex`.
    public func publishRateLimiter(listenerIndex: Int, now: MonotonicInstant) -> PublishRateLimiter {
        let policy = policies.withLock { p in
            (listenerIndex < p.listenerPublishRates.count ? p.listenerPublishRates[listenerIndex] : nil) ?? p.publishRate
        }
        return PublishRateLimiter(policy: policy, now: now)
    }

    /// The clock the limiters use (pass `now()` to `PublishRateLimiter.consume`).
    public func now() -> MonotonicInstant { clock.now() }

    // MARK: Lifecycle

    /// Records `start`, then the configured bans in force.
    public func started(version: String, listeners: [String], configPath: String?) {
        audit.record(.started(.init(version: version, listeners: listeners, configPath: configPath,
                                    pid: Int(ProcessInfo.processInfo.processIdentifier))))
        for entry in bans.list() where entry.origin == .config {
            audit.record(.ban(.init(entry)))
        }
    }

    /// Records the shutdown and writes everything still queued.
    public func shutdown(cause: AuditEvent.Shutdown.Cause, uptimeSeconds: Int) async {
        audit.record(.shutdown(.init(cause: cause, uptimeSeconds: uptimeSeconds)))
        await audit.close()
    }

    /// Applies a new configuration's policies and configured bans (counters and dynamic bans stay).
    public func reload(_ settings: ProtectionPolicy, path: String?) {
        bans.updatePolicy(settings.banPolicy)
        gate.updateLimits(settings.connectionLimits)
        authFailures.updatePolicy(settings.authFailures)
        flapping.updatePolicy(settings.flapping)
        alerts.updatePolicy(settings.alerts)
        policies.withLock {
            $0 = Policies(listenerLimits: settings.listenerConnectionLimits, publishRate: settings.publishRate,
                          listenerPublishRates: settings.listenerPublishRates, banPolicy: settings.banPolicy)
        }
        bans.setConfigured(settings.configuredBans)
        audit.record(.configReload(.init(outcome: .success, path: path, error: nil)))
    }

    public func reloadRejected(path: String?, error: String) {
        audit.record(.configReload(.init(outcome: .rejected, path: path, error: error)))
    }

    /// Periodic housekeeping: expire bans (reported), forget idle counters.
    public func sweep() {
        bans.sweep()
        gate.sweep()
        authFailures.sweep()
        flapping.sweep()
        metrics?.setActiveBans(bans.activeCount)
        metrics?.failureTracker(authFailures.usage)
    }

    private func raise(_ alert: Alert?) {
        guard let alert else { return }
        audit.record(.alert(.init(alert)))
        metrics?.alertRaised(alert.kind)
        onAlert(alert, alert.payload())
    }
}

private final class BanObserver: Sendable {
    let value = Mutex<(@Sendable (BanEntry) -> Void)?>(nil)
}
