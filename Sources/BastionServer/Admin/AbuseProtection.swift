import BastionSecurity
import Foundation
import NIOCore
import Synchronization

/// The abuse-protection pieces built from `ProtectionSettings` and connected to each other and to
/// the audit log and metrics, so the server calls one method per event:
///
/// | when | call |
/// |---|---|
/// | a socket is accepted (before TLS) | `admit(remote:listener:listenerIndex:)`; false → close it |
/// | that socket closes | `closed(remote:after:)` (exactly once per admitted socket) |
/// | CONNECT, before authentication | `bannedIdentity(username:clientID:)` |
/// | authentication fails | `authenticationFailed(_:)` |
/// | a client is accepted | `connectionAccepted(_:)` |
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
    public let metrics: BrokerMetrics?
    private let clock: any LimitClock
    private let onAlert: @Sendable (Alert, _ payload: String) -> Void
    private let policies: Mutex<Policies>

    private struct Policies {
        var listenerLimits: [ConnectionLimits?]
        var publishRate: PublishRatePolicy
        var listenerPublishRates: [PublishRatePolicy?]
    }

    /// - Parameter onAlert: receives each alert and its JSON payload (publish it retained-free on
    ///   `SysTopics.alertsTopic`). Called on the thread that recorded the triggering event.
    public init(settings: ProtectionSettings, audit: AuditLog, metrics: BrokerMetrics?, clock: any LimitClock = SystemLimitClock(),
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
            listenerPublishRates: settings.listenerPublishRates))
        // Configured bans apply from the first accepted socket; their audit records follow `start`.
        bans.setConfigured(settings.configuredBans)
        metrics?.setActiveBans(bans.activeCount)
        bans.setEventHandler { [audit, metrics, bans] event in
            audit.record(AuditEvent(event))
            metrics?.banEvent(event, activeBans: bans.activeCount)
        }
    }

    // MARK: Accept and close

    /// The accept-time check. True: proceed (TLS, MQTT) and call `closed` when the socket closes.
    /// False: close the socket now; refusal audit and metrics are done.
    public func admit(remote: SocketAddress?, listener: String, listenerIndex: Int) -> Bool {
        guard let ip = IPAddress(remote) else { return true }  // Unix sockets: nothing to key on
        let listenerLimits = policies.withLock { p in listenerIndex < p.listenerLimits.count ? p.listenerLimits[listenerIndex] : nil }
        switch gate.admit(ip: ip, listenerLimits: listenerLimits) {
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

    /// A socket that `admit` let through closed after `duration`.
    public func closed(remote: SocketAddress?, after duration: Duration) {
        guard let ip = IPAddress(remote) else { return }
        gate.released(ip: ip)
        flapping.connectionClosed(ip: ip, duration: duration)
    }

    // MARK: CONNECT

    /// A ban on the user name or client id of a CONNECT (address bans were checked at accept).
    /// Refuse with CONNACK 0x8A (5.0) / 0x05 and report `authenticationFailed(... .banned)`.
    public func bannedIdentity(username: String?, clientID: String?) -> BanEntry? {
        bans.isBanned(ip: nil, username: username, clientID: clientID)
    }

    /// Counts towards brute-force bans and alerts, and writes the audit record.
    public func authenticationFailed(_ failure: AuditEvent.AuthFailure) {
        audit.record(.authFailure(failure))
        metrics?.authFailed()
        let ip = failure.peer.ip.flatMap { IPAddress($0) }
        // A banned identity is not a guess at a password: it does not count towards more bans.
        if failure.reason != .banned {
            authFailures.failed(ip: ip, username: failure.username)
        }
        raise(alerts.record(.authFailures))
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
    public func reload(_ settings: ProtectionSettings, path: String?) {
        bans.updatePolicy(settings.banPolicy)
        gate.updateLimits(settings.connectionLimits)
        authFailures.updatePolicy(settings.authFailures)
        flapping.updatePolicy(settings.flapping)
        alerts.updatePolicy(settings.alerts)
        policies.withLock {
            $0 = Policies(listenerLimits: settings.listenerConnectionLimits, publishRate: settings.publishRate,
                          listenerPublishRates: settings.listenerPublishRates)
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
    }

    private func raise(_ alert: Alert?) {
        guard let alert else { return }
        audit.record(.alert(.init(alert)))
        metrics?.alertRaised(alert.kind)
        onAlert(alert, SysTopics.alertPayload(alert))
    }
}
