import BastionCore
import BastionSecurity
import MQTTCodec
import NIOCore
import Sparkplug

/// Sparkplug on the publish path, after the ACL and the Sparkplug roles allowed the PUBLISH:
/// commands verified (signed groups) and audited, births, deaths and data fed to the inventory.
extension MQTTConnectionHandler {
    /// Whether an allowed PUBLISH on a Sparkplug topic may be routed; false when it was refused
    /// here (a command whose signature fails), in which case the refusal was acknowledged.
    func sparkplugAdmits(_ topic: SparkplugTopic, _ message: Message, publish: PublishPacket) -> Bool {
        if case .edge(let edge) = topic, edge.messageType.isCommand {
            return commandAdmitted(edge, message, publish: publish)
        }
        if let state = sparkplug, state.lastTopicIsOwnData, let session = state.session, case .edge(let edge) = topic,
           broker.sparkplug.observeOwnData(edge, payload: message.payload, session: session) {
            state.countData(in: broker.sparkplug)
            return true
        }
        SparkplugAwareness.observe(topic, message.payload, in: broker.sparkplug, byWill: false, clientID: clientID, peer: auditPeer)
        if case .edge(let edge) = topic, edge.messageType == .nbirth, let state = sparkplug {
            state.node = edge
            state.session = broker.sparkplug.session(of: edge)
            state.lastTopicIsOwnData = false
        }
        return true
    }

    /// The Sparkplug topic of a PUBLISH (nil outside `spBv1.0/`). An edge node publishes the same
    /// few topics over and over, so the last one is remembered and not parsed again.
    func sparkplugTopic(_ topicName: String) -> SparkplugTopic? {
        guard SparkplugAwareness.isSparkplug(topicName) else { return nil }
        let state = sparkplug ?? SparkplugConnectionState()
        sparkplug = state
        if let topic = state.lastTopic, state.lastTopicName == topicName { return topic }
        guard let topic = SparkplugAwareness.classify(topicName) else { return nil }
        state.lastTopicName = topicName
        state.lastTopic = topic
        state.lastTopicIsOwnData = if case .edge(let edge) = topic, edge.messageType == .ndata { state.isOwnNode(edge) } else { false }
        return topic
    }

    /// A PUBLISH in the Sparkplug namespace was denied by the ACL or the Sparkplug roles.
    func sparkplugDenied(_ topicName: String) {
        if let refusal = (authorizer as? SparkplugClientAuthorizer)?.lastRefusal { broker.sparkplug.refused(refusal) }
        guard case .edge(let edge)? = SparkplugAwareness.classify(topicName), edge.messageType.isCommand else { return }
        auditCommand(edge, payload: nil, outcome: .refused, reason: authorizer.lastDenialRule ?? "default deny", signature: .notRequired)
    }

    /// The connection that published this edge node's NBIRTH is gone.
    func sparkplugConnectionLost() {
        sparkplug?.flushDataCount(to: broker.sparkplug)
        guard let node = sparkplug?.node else { return }
        broker.sparkplug.connectionLost(group: node.groupID, edge: node.edgeNodeID)
    }

    private func commandAdmitted(_ edge: SparkplugEdgeTopic, _ message: Message, publish: PublishPacket) -> Bool {
        guard let keys = (authorizer as? SparkplugClientAuthorizer)?.commandKeys(group: edge.groupID) else {
            auditCommand(edge, payload: message.payload, outcome: .accepted, reason: nil, signature: .notRequired)
            return true
        }
        let payload = Array(message.payload.readableBytesView)
        let property = publish.properties.userProperties.last { $0.name == SparkplugCommandSignature.userPropertyName }?.value
        let failure: SparkplugSignatureFailure
        if keys.isEmpty {
            failure = .badSignature
        } else {
            switch SparkplugCommandVerifier.verify(topic: message.topic, payload: payload, userProperty: property, publicKeys: keys) {
            case .success:
                auditCommand(edge, payload: message.payload, outcome: .accepted, reason: nil, signature: .verified)
                return true
            case .failure(let reason):
                failure = reason
            }
        }
        let signature: AuditEvent.SparkplugCommand.Signature = switch failure {
        case .missing: .missing
        case .malformed: .malformed
        case .badSignature: .bad
        }
        auditCommand(edge, payload: message.payload, outcome: .refused, reason: "\(failure)", signature: signature)
        if let acknowledgement = machine.acknowledgement(for: publish, reason: .notAuthorized, reasonString: "\(failure)") {
            queueAcknowledgement(acknowledgement, after: [])
        }
        return false
    }

    private func auditCommand(_ edge: SparkplugEdgeTopic, payload: ByteBuffer?, outcome: AuditEvent.SparkplugCommand.Outcome,
                              reason: String?, signature: AuditEvent.SparkplugCommand.Signature) {
        let metrics = payload.flatMap { payload in
            try? SparkplugPayloadSummary.decode(payload.readableBytesView, limits: broker.sparkplug.decodeLimits).get().metricNames
        }
        broker.sparkplug.command(AuditEvent.SparkplugCommand(
            peer: auditPeer, clientID: clientID, username: identity?.username, topic: edge.topicName, group: edge.groupID,
            edgeNode: edge.edgeNodeID, device: edge.deviceID, metrics: metrics, outcome: outcome, reason: reason, signature: signature))
    }
}

/// What a connection remembers about its Sparkplug traffic: the edge node whose NBIRTH it published
/// (its loss takes the node offline), that session's seq counter, and the last topic it parsed.
final class SparkplugConnectionState {
    var node: SparkplugEdgeTopic?
    var session: SparkplugEdgeSession?
    var lastTopicName = ""
    var lastTopic: SparkplugTopic?
    /// `lastTopic` is NDATA of `node`: the lock-free path applies.
    var lastTopicIsOwnData = false
    /// In-order data messages not yet added to the service's counter (one shared atomic add per
    /// batch, not per message).
    private var uncountedData = 0
    private static let countBatch = 64

    func countData(in service: SparkplugService) {
        uncountedData += 1
        if uncountedData >= Self.countBatch { flushDataCount(to: service) }
    }

    func flushDataCount(to service: SparkplugService) {
        guard uncountedData > 0 else { return }
        service.countOwnData(uncountedData)
        uncountedData = 0
    }

    func isOwnNode(_ edge: SparkplugEdgeTopic) -> Bool {
        guard let node else { return false }
        return node.edgeNodeID == edge.edgeNodeID && node.groupID == edge.groupID
    }
}
