import MQTTCodec
import NIOCore

/// Client-to-server PUBLISH rules that need per-connection state: topic aliases (spec 3.3.2.3.4),
/// the server's Receive Maximum (3.3.4), and QoS 2 duplicate suppression (4.3.3).
public struct InboundPublishState: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Route the message under `topic`; then acknowledge per QoS.
        case route(topic: String)
        /// A repeat of a QoS 2 PUBLISH already received (PUBREC sent, no PUBREL yet): answer PUBREC
        /// again, do not forward it twice.
        case duplicateQoS2
        /// A protocol violation: DISCONNECT with this reason (5.0) or close (3.1.1).
        case disconnect(ReasonCode, String)
    }

    private var aliases: [UInt16: String] = [:]
    /// QoS 1 PUBLISH received whose PUBACK has not been sent yet (acks wait for durability).
    public private(set) var pendingQoS1: Int {
        get { Int(pendingCount) }
        set { pendingCount = Int32(clamping: newValue) }
    }
    // Narrow storage (bounded by Receive Maximum): one of these lives in every connection.
    private var pendingCount: Int32 = 0
    private let receiveLimit: UInt16
    private let aliasLimit: UInt16

    public var receiveMaximum: Int { Int(receiveLimit) }
    public var topicAliasMaximum: Int { Int(aliasLimit) }

    public init(receiveMaximum: Int, topicAliasMaximum: Int) {
        self.receiveLimit = UInt16(clamping: receiveMaximum)
        self.aliasLimit = UInt16(clamping: topicAliasMaximum)
    }

    public mutating func received(_ publish: PublishPacket, version: ProtocolVersion, inboundQoS2: inout Set<UInt16>) -> Decision {
        var topic = publish.topic
        if let alias = publish.properties.topicAlias {
            guard Int(alias) <= topicAliasMaximum else {
                return .disconnect(.topicAliasInvalid, "topic alias \(alias) exceeds maximum \(topicAliasMaximum)")
            }
            if topic.isEmpty {
                guard let known = aliases[alias] else { return .disconnect(.topicAliasInvalid, "unknown topic alias \(alias)") }
                topic = known
            } else {
                aliases[alias] = topic
            }
        } else if topic.isEmpty {
            return .disconnect(.protocolError, "empty topic name without topic alias")
        }

        switch publish.qos {
        case .atMostOnce:
            break
        case .atLeastOnce:
            guard pendingQoS1 + inboundQoS2.count < receiveMaximum else {
                return .disconnect(.receiveMaximumExceeded, "more than \(receiveMaximum) unacknowledged QoS 1/2 messages")
            }
            pendingQoS1 += 1
        case .exactlyOnce:
            if inboundQoS2.contains(publish.packetID) { return .duplicateQoS2 }
            guard pendingQoS1 + inboundQoS2.count < receiveMaximum else {
                return .disconnect(.receiveMaximumExceeded, "more than \(receiveMaximum) unacknowledged QoS 1/2 messages")
            }
            inboundQoS2.insert(publish.packetID)
        }
        return .route(topic: topic)
    }

    /// The PUBACK for a QoS 1 message has been sent.
    public mutating func acknowledgedQoS1() {
        if pendingQoS1 > 0 { pendingQoS1 -= 1 }
    }

    /// A refused QoS 2 message (PUBREC with a failure code) ends its flow at once (spec 4.3.3).
    public static func refusedQoS2(_ packetID: UInt16, inboundQoS2: inout Set<UInt16>) {
        inboundQoS2.remove(packetID)
    }

    /// PUBREL: returns whether the packet id was known (5.0 answers 0x92 otherwise).
    public static func released(_ packetID: UInt16, inboundQoS2: inout Set<UInt16>) -> Bool {
        inboundQoS2.remove(packetID) != nil
    }
}
