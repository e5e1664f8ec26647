import BastionCore
import Foundation
import MQTTCodec
import NIOCore

/// Column encodings for values SQLite has no type for. Every decoder validates what it reads and
/// throws `RowDecodingFailure` instead of trapping: a damaged row must not crash the broker.
struct RowDecodingFailure: Error, CustomStringConvertible {
    var description: String
}

enum RowCoding {
    static func messageID(_ id: MessageID) -> Int64 { Int64(bitPattern: id) }
    static func messageID(_ value: Int64) -> MessageID { MessageID(bitPattern: value) }

    static func blob(_ buffer: ByteBuffer) -> Data { Data(buffer.readableBytesView) }

    static func buffer(_ data: Data) -> ByteBuffer {
        data.withUnsafeBytes { ByteBuffer(bytes: $0) }
    }

    static func decodeQoS(_ value: Int64) throws(RowDecodingFailure) -> QoS {
        guard let raw = UInt8(exactly: value), let qos = QoS(rawValue: raw) else {
            throw RowDecodingFailure(description: "invalid QoS \(value)")
        }
        return qos
    }

    // MARK: Publish properties: the MQTT 5 property section, as on the wire.

    static func properties(_ properties: PublishProperties) -> Data {
        var buffer = ByteBuffer()
        properties.writeSection(to: &buffer)
        return blob(buffer)
    }

    static func decodeProperties(_ data: Data) throws(RowDecodingFailure) -> PublishProperties {
        var buffer = self.buffer(data)
        do {
            return try PublishProperties(decodingSectionFrom: &buffer)
        } catch {
            throw RowDecodingFailure(description: "invalid message properties: \(error)")
        }
    }

    // MARK: Subscription identifiers: big-endian UInt32s; NULL when there are none.

    static func subscriptionIdentifiers(_ ids: [UInt32]) -> Data? {
        guard !ids.isEmpty else { return nil }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(ids.count * 4)
        for id in ids { buffer.writeInteger(id) }
        return blob(buffer)
    }

    static func decodeSubscriptionIdentifiers(_ data: Data?) throws(RowDecodingFailure) -> [UInt32] {
        guard let data else { return [] }
        guard data.count % 4 == 0 else { throw RowDecodingFailure(description: "invalid subscription identifiers") }
        var buffer = self.buffer(data)
        var ids: [UInt32] = []
        ids.reserveCapacity(data.count / 4)
        while let id = buffer.readInteger(as: UInt32.self) { ids.append(id) }
        return ids
    }

    // MARK: Subscriptions: format byte 1, then per entry filter length (UInt32), filter UTF-8,
    // options byte (as in SUBSCRIBE), identifier (UInt32, 0 = none).

    private static let subscriptionsFormat: UInt8 = 1

    static func subscriptions(_ subscriptions: [Subscription]) -> Data {
        var buffer = ByteBuffer()
        buffer.writeInteger(subscriptionsFormat)
        for subscription in subscriptions {
            let options = subscription.options
            let flags = options.qos.rawValue | (options.noLocal ? 0x04 : 0) | (options.retainAsPublished ? 0x08 : 0)
                | (options.retainHandling.rawValue << 4)
            buffer.writeInteger(UInt32(subscription.filter.utf8.count))
            buffer.writeString(subscription.filter)
            buffer.writeInteger(flags)
            buffer.writeInteger(subscription.identifier ?? 0)
        }
        return blob(buffer)
    }

    static func decodeSubscriptions(_ data: Data) throws(RowDecodingFailure) -> [Subscription] {
        var buffer = self.buffer(data)
        guard buffer.readInteger(as: UInt8.self) == subscriptionsFormat else {
            throw RowDecodingFailure(description: "unknown subscription list format")
        }
        var result: [Subscription] = []
        while buffer.readableBytes > 0 {
            guard let length = buffer.readInteger(as: UInt32.self),
                let filter = buffer.readString(length: Int(length)),
                let flags = buffer.readInteger(as: UInt8.self),
                let identifier = buffer.readInteger(as: UInt32.self),
                let qos = QoS(rawValue: flags & 0x03),
                let retainHandling = SubscribePacket.RetainHandling(rawValue: (flags >> 4) & 0x03)
            else { throw RowDecodingFailure(description: "truncated or invalid subscription list") }
            let options = SubscribePacket.Options(
                qos: qos, noLocal: flags & 0x04 != 0, retainAsPublished: flags & 0x08 != 0, retainHandling: retainHandling)
            result.append(Subscription(filter: filter, options: options, identifier: identifier == 0 ? nil : identifier))
        }
        return result
    }
}
