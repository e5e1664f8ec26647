import BastionCore
import BastionSecurity
import Foundation
import Logging
import NIOCore
import Sparkplug
import Synchronization

/// The server's view of the Sparkplug system passing through it: the live inventory (groups, edge
/// nodes, devices, host applications), counters of what was refused, undecodable or anomalous,
/// and alerts on session-rule breaks. Shared by all event loops behind one lock, taken only for
/// messages in the Sparkplug namespace.
final class SparkplugService: Sendable {
    struct Counters: Sendable, Codable, Equatable {
        var messages = 0
        /// Payloads that did not decode (births and deaths are also audit-logged).
        var undecodablePayloads = 0
        var commandsAccepted = 0
        var commandsRefused = 0
        /// Sparkplug role refusals (forged births, foreign STATE, commands without host role).
        var refusals: [String: Int] = [:]
        var anomalies: [String: Int] = [:]
    }

    private struct State {
        var inventory: SparkplugInventory
        var counters = Counters()
        /// When an anomaly alert was last raised, per edge node and kind; bounded.
        var alerted: [String: NIODeadline] = [:]
        /// Alerts raised in the current window, across all edge nodes: a client inventing edge
        /// ids must not turn its publish rate into an alert rate.
        var alertWindowStart = NIODeadline.uptimeNanoseconds(0)
        var alertsInWindow = 0
    }

    private let state: Mutex<State>
    /// Data messages counted on the lock-free path (added to `Counters.messages` when read); up to
    /// 64 per connection are added late, when the batch fills or the connection closes.
    private let fastDataMessages = Atomic<Int>(0)
    private let protection: AbuseProtection?
    private let logger: Logger
    let decodeLimits: SparkplugDecodeLimits
    static let alertInterval = TimeAmount.seconds(60)
    static let maximumAlertKeys = 10_000
    static let maximumAlertsPerInterval = 100

    init(limits: SparkplugInventoryLimits = SparkplugInventoryLimits(), decodeLimits: SparkplugDecodeLimits = SparkplugDecodeLimits(),
         protection: AbuseProtection?, logger: Logger) {
        state = Mutex(State(inventory: SparkplugInventory(limits: limits)))
        self.protection = protection
        self.logger = logger
        self.decodeLimits = decodeLimits
    }

    static func now() -> SparkplugMilliseconds {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    /// NDATA of the edge node whose NBIRTH this connection published, checked against that
    /// session's seq without the inventory's lock. False when the session has ended (the caller then
    /// goes through `observe`, which knows why).
    func observeOwnData(_ topic: SparkplugEdgeTopic, payload: ByteBuffer, session: SparkplugEdgeSession) -> Bool {
        guard let seq = payload.withUnsafeReadableBytes({ SparkplugWire.seq(in: $0.bindMemory(to: UInt8.self)) }) else {
            return false
        }
        switch session.advance(to: seq) {
        case .ended:
            return false
        case .inOrder:
            break  // counted by the connection, in batches (`countOwnData`)
        case .gap(let expected):
            let anomaly = SparkplugAnomaly.seqGap(group: topic.groupID, edge: topic.edgeNodeID, expected: expected, received: seq)
            state.withLock { $0.counters.anomalies[anomaly.kind.rawValue, default: 0] += 1 }
            report([anomaly], topic: topic)
        }
        return true
    }

    func countOwnData(_ messages: Int) {
        fastDataMessages.add(messages, ordering: .relaxed)
    }

    /// The live session of an edge node (after its NBIRTH was observed).
    func session(of topic: SparkplugEdgeTopic) -> SparkplugEdgeSession? {
        state.withLock { $0.inventory.session(group: topic.groupID, edge: topic.edgeNodeID) }
    }

    /// A message on an edge topic, from a client or as a will, after it was allowed.
    func observe(_ topic: SparkplugEdgeTopic, payload: ByteBuffer, byWill: Bool, clientID: String, peer: AuditPeer?) {
        let at = Self.now()
        let result = payload.withUnsafeReadableBytes { raw in
            SparkplugObservation.from(topic, payload: raw.bindMemory(to: UInt8.self), at: at, byWill: byWill, limits: decodeLimits)
        }
        switch result {
        case .success(let observation):
            let anomalies = state.withLock { state -> [SparkplugAnomaly] in
                state.counters.messages += 1
                guard let observation else { return [] }
                let anomalies = state.inventory.observe(observation)
                for anomaly in anomalies { state.counters.anomalies[anomaly.kind.rawValue, default: 0] += 1 }
                return anomalies
            }
            if !anomalies.isEmpty { report(anomalies, topic: topic) }
        case .failure(let error):
            state.withLock {
                $0.counters.messages += 1
                $0.counters.undecodablePayloads += 1
            }
            if topic.messageType.isBirth || topic.messageType == .ndeath || topic.messageType == .ddeath {
                logger.warning("Sparkplug payload does not decode; forwarded unchanged", metadata: [
                    "topic": "\(topic.topicName)", "client_id": "\(clientID)", "error": "\(error)",
                ])
                protection?.sparkplugPayloadInvalid(AuditEvent.SparkplugPayloadInvalid(
                    peer: peer ?? AuditPeer(listener: nil, ip: nil, port: nil), clientID: clientID, topic: topic.topicName,
                    error: "\(error)", will: byWill))
            }
        }
    }

    /// A host application's STATE (3.0: JSON `{"online", "timestamp"}`).
    func observeState(hostID: String, payload: ByteBuffer) {
        let decoded = SparkplugStatePayload.decode(payload.readableBytesView)
        let anomalies = state.withLock { state -> [SparkplugAnomaly] in
            state.counters.messages += 1
            guard let decoded else {
                state.counters.undecodablePayloads += 1
                return []
            }
            return state.inventory.observe(.state(hostID: hostID, online: decoded.online, timestamp: decoded.timestamp, at: Self.now()))
        }
        for anomaly in anomalies { state.withLock { $0.counters.anomalies[anomaly.kind.rawValue, default: 0] += 1 } }
    }

    /// The connection that published an edge node's NBIRTH closed.
    func connectionLost(group: String, edge: String) {
        _ = state.withLock { $0.inventory.observe(.connectionLost(group: group, edge: edge, at: Self.now())) }
    }

    func refused(_ refusal: SparkplugRefusal) {
        state.withLock { $0.counters.refusals[refusal.name, default: 0] += 1 }
    }

    func command(_ command: AuditEvent.SparkplugCommand) {
        state.withLock {
            if command.outcome == .accepted { $0.counters.commandsAccepted += 1 } else { $0.counters.commandsRefused += 1 }
        }
        protection?.sparkplugCommand(command)
        if command.outcome == .refused {
            logger.info("Sparkplug command refused", metadata: [
                "client_id": "\(command.clientID)", "topic": "\(command.topic)", "reason": "\(command.reason ?? "")",
            ])
        }
    }

    private func report(_ anomalies: [SparkplugAnomaly], topic: SparkplugEdgeTopic) {
        let now = NIODeadline.now()
        let node = "\(topic.groupID)/\(topic.edgeNodeID)"
        let due = state.withLock { state -> [SparkplugAnomaly] in
            if state.alerted.count > Self.maximumAlertKeys { state.alerted.removeAll(keepingCapacity: true) }
            if now - state.alertWindowStart >= Self.alertInterval {
                state.alertWindowStart = now
                state.alertsInWindow = 0
            }
            return anomalies.filter { anomaly in
                guard state.alertsInWindow < Self.maximumAlertsPerInterval else { return false }
                let key = "\(node) \(anomaly.kind.rawValue)"
                if let last = state.alerted[key], now - last < Self.alertInterval { return false }
                state.alerted[key] = now
                state.alertsInWindow += 1
                return true
            }
        }
        for anomaly in due {
            logger.warning("Sparkplug session rule broken", metadata: ["edge_node": "\(node)", "anomaly": "\(anomaly)"])
            protection?.sparkplugAnomaly(subject: "edge_node \(node) \(anomaly.kind.rawValue)")
        }
    }

    struct Document: Sendable, Codable, Equatable {
        var inventory: SparkplugInventorySnapshot
        var counters: Counters
    }

    func document() -> Document {
        let fast = fastDataMessages.load(ordering: .relaxed)
        return state.withLock {
            var counters = $0.counters
            counters.messages += fast
            return Document(inventory: $0.inventory.snapshot(), counters: counters)
        }
    }

    func summary() -> (groups: Int, edgeNodes: Int, devices: Int, hostApplications: Int, counters: Counters) {
        let fast = fastDataMessages.load(ordering: .relaxed)
        return state.withLock {
            var counters = $0.counters
            counters.messages += fast
            return ($0.inventory.groupCount, $0.inventory.edgeNodeCount, $0.inventory.trackedDeviceCount,
                    $0.inventory.hostApplicationCount, counters)
        }
    }

    func documentJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(document()) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
