import BastionCore
import BastionStore
import Foundation
import MQTTCodec
import NIOCore
import Synchronization

// MARK: - Sample values

enum Sample {
    static func payload(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func message(
        _ id: MessageID, topic: String = "sensors/1", payload: String = "hello", qos: QoS = .atLeastOnce,
        retain: Bool = false, expiresAt: WallClock? = nil, richProperties: Bool = false
    ) -> StoredMessage {
        var properties = PublishProperties()
        if richProperties {
            properties.payloadFormatIndicator = 1
            properties.messageExpiryInterval = 3600
            properties.responseTopic = "replies/\(id)"
            properties.correlationData = ByteBuffer(bytes: [0, 1, 2, 255])
            properties.userProperties = [UserProperty(name: "k", value: "v"), UserProperty(name: "k", value: "w")]
            properties.contentType = "application/json"
        }
        return StoredMessage(
            id: id, topic: topic, payload: self.payload(payload), qos: qos, retain: retain, properties: properties,
            publisherClientID: "publisher-\(id)", expiresAt: expiresAt)
    }

    static func delivery(_ id: MessageID, qos: QoS = .atLeastOnce) -> StoredDelivery {
        StoredDelivery(messageID: id, qos: qos, retain: false)
    }

    static func session(
        _ clientID: String, expiry: UInt32 = 3600, disconnectedAt: WallClock? = nil, subscriptions: [Subscription] = []
    ) -> StoredSessionRecord {
        StoredSessionRecord(clientID: clientID, expiryInterval: expiry, subscriptions: subscriptions, disconnectedAt: disconnectedAt)
    }

    static let subscriptions: [Subscription] = [
        Subscription(filter: "sensors/+/temperature", options: .init(qos: .atLeastOnce)),
        Subscription(
            filter: "$share/group/jobs/#",
            options: .init(qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend),
            identifier: 268_435_455),
        Subscription(filter: "ünïcode/ℹ︎", options: .init(qos: .atMostOnce, retainHandling: .sendIfNew), identifier: 7),
    ]
}

/// Collects completions from many threads.
final class CompletionLog: Sendable {
    private let results = Mutex<[Int: Result<Void, StoreError>]>([:])

    func record(_ index: Int, _ result: Result<Void, StoreError>) {
        results.withLock { $0[index] = result }
    }

    var count: Int { results.withLock { $0.count } }
    var failures: [Int: StoreError] {
        results.withLock { results in
            results.compactMapValues { result in
                if case .failure(let error) = result { return error }
                return nil
            }
        }
    }
}
