import BastionAdmin
import BastionCore
import BastionSecurity
import Foundation
import MQTTCodec
import NIOCore
import NIOPosix
import Synchronization
import X509

/// The admin console's view of the running broker (`BrokerControl`), built from the broker's own
/// state: the session registry, the retained store, and each event loop's connections — read on
/// that loop (`loop.submit`), since a connection handler's fields belong to its loop.
final class BrokerControlAdapter: BrokerControl {
    let broker: Broker
    let metrics: BrokerMetrics?
    let protection: AbuseProtection
    let policy: PolicySnapshot
    let alertHistory: AlertHistory
    let auditLog: AuditLog
    let auditPath: String?
    let tlsHolders: [TLSContextHolder?]
    let listenerNames: [String]
    /// File reads (the audit tail) run here, never on an event loop.
    let pool: NIOThreadPool
    let ready: @Sendable () -> Bool
    let reload: @Sendable () -> String?

    init(broker: Broker, metrics: BrokerMetrics?, protection: AbuseProtection, policy: PolicySnapshot, alertHistory: AlertHistory,
         audit: AuditLog, auditPath: String?, tlsHolders: [TLSContextHolder?], listenerNames: [String], pool: NIOThreadPool,
         ready: @escaping @Sendable () -> Bool, reload: @escaping @Sendable () -> String?) {
        self.broker = broker
        self.metrics = metrics
        self.protection = protection
        self.policy = policy
        self.alertHistory = alertHistory
        self.auditLog = audit
        self.auditPath = auditPath
        self.tlsHolders = tlsHolders
        self.listenerNames = listenerNames
        self.pool = pool
        self.ready = ready
        self.reload = reload
    }

    var bans: BanList? { protection.bans }
    var audit: AuditLog { auditLog }
    var bridges: (any BridgeInventoryProvider)? { nil }
    var sparkplug: (any SparkplugInventoryProvider)? { SparkplugInventoryAdapter(service: broker.sparkplug) }

    // MARK: Connections

    /// Runs `body` on every loop with that loop's connected handlers, and gathers the results.
    private func onEveryLoop<T: Sendable>(_ body: @escaping @Sendable ([MQTTConnectionHandler]) -> [T]) async -> [T] {
        let futures = broker.group.makeIterator().map { loop in
            loop.submit { body(self.broker.worker(on: loop).connections.values.filter { $0.machine.isConnected }) }
        }
        var all: [T] = []
        for future in futures { all += (try? await future.get()) ?? [] }
        return all
    }

    func clients(limit: Int) async -> [ClientSummary] {
        let now = NIODeadline.now()
        let list = await onEveryLoop { handlers in
            handlers.map { h in
                ClientSummary(
                    client_id: h.clientID, identity: h.identity.flatMap { $0.certificateIdentity ?? $0.username },
                    username: h.identity?.username, address: h.info.remoteAddress, protocol_version: h.version.description,
                    listener: h.info.listener, tls: h.info.tlsVersion, tls_cipher: h.info.cipherSuite,
                    subscriptions: (h.machine.state?.subscriptions.keys).map { Array($0).sorted() } ?? [],
                    connected_seconds: Int((now - h.acceptedAt).nanoseconds / 1_000_000_000))
            }
        }
        return Array(list.sorted { $0.client_id < $1.client_id }.prefix(limit))
    }

    func kick(clientID: String) async -> Bool {
        let kicked = await onEveryLoop { handlers in
            handlers.filter { $0.clientID == clientID }.map { handler -> Bool in
                handler.closeReason = "disconnected by an administrator"
                handler.run(.disconnect(.administrativeAction, reasonString: "disconnected by an administrator"))
                return true
            }
        }
        return !kicked.isEmpty
    }

    // MARK: Sessions and subscriptions

    func sessions(limit: Int) async -> [SessionSummary] {
        let connected = await onEveryLoop { handlers in
            handlers.map { ($0.clientID, $0.machine.state?.subscriptions.count ?? 0) }
        }
        let online = Dictionary(connected, uniquingKeysWith: { a, _ in a })
        return broker.registry.summaries(limit: limit).map { s in
            var queued = 0
            var subscriptions = online[s.clientID] ?? 0
            if !s.connected, let handle = broker.registry.handle(for: s.clientID) {
                _ = handle.withOfflineState { offline in
                    queued = offline.state.outbound.queue.count + offline.state.outbound.inflight.count
                    subscriptions = offline.state.subscriptions.count
                }
            }
            return SessionSummary(client_id: s.clientID, owner: s.owner, connected: s.connected, persistent: s.persistent,
                                  queued_messages: queued, subscriptions: subscriptions)
        }
    }

    func subscriptions(limit: Int) async -> [SubscriptionSummary] {
        var list = await onEveryLoop { handlers in
            handlers.flatMap { h in
                (h.machine.state?.subscriptions.values).map(Array.init)?.map {
                    SubscriptionSummary(client_id: h.clientID, filter: $0.topicFilter, qos: Int($0.options.qos.rawValue),
                                        share_group: $0.shareGroup, connected: true)
                } ?? []
            }
        }
        for s in broker.registry.summaries() where !s.connected {
            guard let handle = broker.registry.handle(for: s.clientID) else { continue }
            _ = handle.withOfflineState { offline in
                for sub in offline.state.subscriptions.values {
                    list.append(SubscriptionSummary(client_id: s.clientID, filter: sub.topicFilter, qos: Int(sub.options.qos.rawValue),
                                                    share_group: sub.shareGroup, connected: false))
                }
            }
        }
        return Array(list.sorted { ($0.filter, $0.client_id) < ($1.filter, $1.client_id) }.prefix(limit))
    }

    // MARK: Retained messages

    func retained(filter: String, limit: Int) async -> [RetainedSummary]? {
        do {
            try TopicRules.validateFilter(filter, limits: nil)
        } catch {
            return nil
        }
        return broker.retained.matching(filter).sorted { $0.topic < $1.topic }.prefix(limit).map { message in
            let bytes = message.payload.readableBytes
            var preview: String?
            if bytes <= 256, let text = message.payload.getString(at: message.payload.readerIndex, length: bytes),
               text.unicodeScalars.allSatisfy({ $0.value >= 0x20 || $0 == "\n" || $0 == "\t" }) {
                preview = text
            }
            return RetainedSummary(topic: message.topic, qos: Int(message.qos.rawValue), bytes: bytes, preview: preview)
        }
    }

    func deleteRetained(topic: String) async -> RetainedDeletion {
        guard !topic.isEmpty, !TopicRules.hasWildcard(topic), (try? TopicRules.validateName(topic, limits: nil)) != nil else {
            return .invalidTopic
        }
        guard broker.retained.matching(topic).contains(where: { $0.topic == topic }) else { return .notFound }
        let loop = broker.group.next()
        let broker = self.broker
        // Cleared in memory and in the store, without routing an empty message to subscribers.
        try? await loop.submit {
            let worker = broker.worker(on: loop)
            let empty = Message(id: worker.nextMessageID(), topic: topic, payload: ByteBuffer(), qos: .atMostOnce, retain: true,
                                publisherClientID: "$admin")
            broker.retained.apply(empty)
            worker.persist([.clearRetained(topic: topic)])
            worker.flush()
        }.get()
        return .deleted
    }

    // MARK: Counters

    func stats() -> BrokerStatsSummary {
        let s = broker.snapshot()
        return BrokerStatsSummary(
            version: s.version, uptime_seconds: s.uptimeSeconds, clients_connected: s.clientsConnected, clients_maximum: s.clientsMaximum,
            sessions_offline: s.clientsDisconnected, connections_total: s.connectionsTotal,
            messages_received: s.publishReceived.qos0 + s.publishReceived.qos1 + s.publishReceived.qos2,
            messages_sent: s.publishSent.qos0 + s.publishSent.qos1 + s.publishSent.qos2,
            messages_dropped: s.dropped.reduce(0, +), bytes_received: s.bytesReceived, bytes_sent: s.bytesSent,
            subscriptions: s.subscriptions, retained_messages: s.retainedMessages, store_healthy: s.storeHealthy)
    }

    func metricsText() -> String? {
        guard let metrics else { return nil }
        metrics.observe(broker.snapshot(), auditDropped: auditLog.droppedCount)
        metrics.setActiveBans(protection.bans.activeCount)
        return metrics.prometheusText()
    }

    func isReady() -> Bool { ready() }

    // MARK: ACL

    func checkACL(_ query: ACLQuery) -> ACLCheckResult {
        let operation: AccessOperation = switch query.action {
        case .publish: .publish
        case .subscribe: .subscribe
        case .read: .read
        }
        guard let policy = policy.current.policy else {
            // No ACL: the broker's open policy (everything but $SYS).
            let sys = query.topic.hasPrefix("$SYS")
            return ACLCheckResult(allowed: !sys, rule: sys ? "no ACL: $SYS needs an explicit grant" : "no ACL configured")
        }
        let identity = policy.bound(Identity(username: query.username, clientID: query.client_id, certificateIdentity: query.certificate))
        let decision = policy.decide(identity, operation, query.topic)
        return ACLCheckResult(allowed: decision.allowed, rule: decision.rule)
    }

    func lintACL() -> [String] { policy.current.warnings.map(\.description) }

    func reloadACL() async -> ReloadOutcome { await reloadAll() }

    func reloadConfig() async -> ReloadOutcome { await reloadAll() }

    /// The reload reads files, so it runs on the thread pool.
    private func reloadAll() async -> ReloadOutcome {
        let reload = self.reload
        do {
            let error = try await pool.runIfActive { reload() }
            return ReloadOutcome(ok: error == nil, error: error)
        } catch {
            return ReloadOutcome(ok: false, error: "the broker is shutting down")
        }
    }

    // MARK: Audit, alerts, certificates

    func auditTail(_ query: AuditQuery) async -> [String] {
        guard let path = auditPath else { return [] }
        return (try? await pool.runIfActive { AuditTail.read(path: path, query: query) }) ?? []
    }

    func alerts(limit: Int) -> [AlertSummary] { alertHistory.recent(limit: limit) }

    func certificates() -> [CertificateSummary] {
        let now = Date()
        return zip(listenerNames, tlsHolders).compactMap { name, holder in
            guard let certificate = holder?.current.serverCertificate else { return nil }
            let notAfter = certificate.notValidAfter
            return CertificateSummary(listener: name, subject: certificate.subject.description, issuer: certificate.issuer.description,
                                      not_after: RFC3339.format(millisecondsSinceEpoch: Int64(notAfter.timeIntervalSince1970 * 1000)),
                                      days_left: Int(notAfter.timeIntervalSince(now) / 86_400))
        }
    }
}

/// The access policy in force and its lint warnings, swapped on reload.
final class PolicySnapshot: Sendable {
    struct Current: Sendable {
        var policy: AccessPolicy?
        var warnings: [LintWarning]
    }

    private let value: Mutex<Current>

    init(policy: AccessPolicy?, warnings: [LintWarning]) { value = Mutex(Current(policy: policy, warnings: warnings)) }

    var current: Current { value.withLock { $0 } }

    func set(policy: AccessPolicy?, warnings: [LintWarning]) { value.withLock { $0 = Current(policy: policy, warnings: warnings) } }
}

/// The last alerts raised (at most 200), for the console.
final class AlertHistory: Sendable {
    private let alerts = Mutex<[AlertSummary]>([])

    func add(_ alert: Alert, at milliseconds: Int64 = RFC3339.nowMilliseconds()) {
        alerts.withLock { list in
            list.append(AlertSummary(at: RFC3339.format(millisecondsSinceEpoch: milliseconds), kind: alert.kind.rawValue, count: alert.count,
                                     threshold: alert.threshold, subject: alert.subject))
            if list.count > 200 { list.removeFirst(list.count - 200) }
        }
    }

    func recent(limit: Int) -> [AlertSummary] { alerts.withLock { Array($0.suffix(limit)) } }
}

/// The newest records of the audit file, read from its end.
enum AuditTail {
    static let window = 1024 * 1024

    static func read(path: String, query: AuditQuery) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return [] }
        let start = size > UInt64(window) ? size - UInt64(window) : 0
        try? handle.seek(toOffset: start)
        guard let data = try? handle.readToEnd() else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        if start > 0, !lines.isEmpty { lines.removeFirst() }  // probably cut
        if let event = query.event { lines = lines.filter { $0.contains("\"event\":\"\(event)\"") } }
        if let text = query.contains { lines = lines.filter { $0.contains(text) } }
        return Array(lines.suffix(max(0, query.limit)))
    }
}
