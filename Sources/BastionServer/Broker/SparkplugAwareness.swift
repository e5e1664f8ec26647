import BastionCore
import BastionSecurity
import Foundation
import MQTTCodec
import NIOCore
import Sparkplug

/// What a Sparkplug Aware MQTT Server (Sparkplug 3.0, "Sparkplug Aware MQTT Server") adds to the
/// publish paths: births kept retained under `$sparkplug/certificates/`, `$sparkplug/` written by
/// the server alone, and NDEATH stamped with the time the server delivers it. Always on: it only
/// touches topics in the two Sparkplug namespaces, and costs one byte comparison elsewhere.
enum SparkplugAwareness {
    /// `$sparkplug/…`: no client PUBLISH or will may write there, whatever the ACL grants.
    @inline(__always)
    static func isServerNamespace(_ topic: String) -> Bool {
        topic.utf8.first == UInt8(ascii: "$") && topic.hasPrefix("$sparkplug/")
    }

    /// `spBv1.0/…`
    @inline(__always)
    static func isSparkplug(_ topic: String) -> Bool {
        topic.utf8.first == UInt8(ascii: "s") && topic.hasPrefix("spBv1.0/")
    }

    /// The Sparkplug topic under `spBv1.0/`; nil for every other topic (one byte decides for most).
    @inline(__always)
    static func classify(_ topic: String) -> SparkplugTopic? {
        guard isSparkplug(topic), case .sparkplug(let parsed) = SparkplugTopic.classify(topic) else { return nil }
        return parsed
    }

    /// The edge topic of an NBIRTH or DBIRTH, nil for anything else.
    static func birth(_ topic: SparkplugTopic?) -> SparkplugEdgeTopic? {
        guard case .edge(let edge)? = topic, edge.messageType.isBirth else { return nil }
        return edge
    }

    /// Feeds the inventory with an allowed message (commands are audited by the publish path).
    static func observe(_ topic: SparkplugTopic, _ payload: ByteBuffer, in service: SparkplugService, byWill: Bool,
                        clientID: String, peer: AuditPeer?) {
        switch topic {
        case .edge(let edge) where !edge.messageType.isCommand:
            service.observe(edge, payload: payload, byWill: byWill, clientID: clientID, peer: peer)
        case .state(let hostID):
            service.observeState(hostID: hostID, payload: payload)
        case .edge, .certificate, .serverNamespace:
            break
        }
    }

    /// The copy of a birth the server keeps, retained, for host applications that connect later.
    /// The latest birth replaces it (it is a retained message on its own topic).
    static func certificate(of message: Message, birth: SparkplugEdgeTopic, id: MessageID) -> Message? {
        guard let topic = birth.certificateTopicName else { return nil }
        return Message(id: id, topic: topic, payload: message.payload, qos: message.qos, retain: true,
                       properties: message.properties, publisherClientID: message.publisherClientID,
                       expiresAt: message.expiresAt)
    }

    /// An NDEATH with `Payload.timestamp` set to `now` (the spec's "time at which it attempts to
    /// deliver the NDEATH"); other messages, and payloads that are not protobuf, unchanged.
    static func stampingDeath(_ message: Message, now: Date = Date()) -> Message {
        guard isSparkplug(message.topic), case .sparkplug(.edge(let edge)) = SparkplugTopic.classify(message.topic),
              edge.messageType == .ndeath else { return message }
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        guard let stamped = SparkplugWire.replacingTimestamp(in: Array(message.payload.readableBytesView), with: milliseconds) else {
            return message
        }
        return Message(id: message.id, topic: message.topic, payload: ByteBuffer(bytes: stamped), qos: message.qos,
                       retain: message.retain, properties: message.properties,
                       publisherClientID: message.publisherClientID, expiresAt: message.expiresAt)
    }
}
