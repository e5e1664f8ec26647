import Foundation
import NIOCore
import Sparkplug

/// Sparkplug B payloads for `fanin --sparkplug`: each edge node publishes an NBIRTH (seq 0, a bdSeq
/// metric) and then NDATA that decodes as a real Sparkplug payload — a timestamp, one Float metric,
/// `seq`, and a `body` whose last twelve bytes are the generator's magic and send time — so the
/// broker's Sparkplug path reads the same fields it reads from a real edge node.
enum SparkplugBenchPayload {
    /// Smallest NDATA payload: prefix, seq and a body holding just the magic and send time.
    static var minimumSize: Int { dataPrefix().count + seqFieldSize + 2 + BenchWire.minimumPayloadSize }

    /// `seq` is written as a two-byte varint (protobuf accepts the non-minimal form), so every
    /// value 0–255 fits the same slot and can be patched in place.
    static let seqFieldSize = 3

    static func birthTopic(forData topic: String) -> String {
        topic.replacingOccurrences(of: "/NDATA/", with: "/NBIRTH/")
    }

    static func birth() -> ByteBuffer {
        var bdSeq = SparkplugB.Metric()
        bdSeq.name = "bdSeq"
        bdSeq.datatype = UInt32(SparkplugB.DataType.int64.rawValue)
        bdSeq.longValue = 0
        var payload = SparkplugB.Payload()
        payload.timestamp = fixedTimestamp
        payload.metrics = [bdSeq, temperature]
        payload.seq = 0
        // Encoding a message built here cannot fail.
        return ByteBuffer(bytes: (try? payload.serializedBytes() as [UInt8]) ?? [])
    }

    /// An NDATA payload of `size` bytes (at least `minimumSize`) and where its seq value starts.
    static func data(size: Int) -> (bytes: [UInt8], seqOffset: Int) {
        var bytes = dataPrefix()
        let seqOffset = bytes.count + 1
        bytes += [0x18, 0x80, 0x00]
        bytes.append(0x2A)
        // The body's length takes as few bytes as fit (padded to that width), so the whole
        // payload is exactly `size` bytes.
        let room = size - bytes.count
        let width = (1...4).first { room - $0 < 1 << (7 * $0) } ?? 4
        let bodyLength = room - width
        for index in 0..<width {
            let group = UInt8((bodyLength >> (7 * index)) & 0x7F)
            bytes.append(index < width - 1 ? group | 0x80 : group)
        }
        bytes += [UInt8](repeating: 0x2E, count: bodyLength - BenchWire.minimumPayloadSize)
        withUnsafeBytes(of: BenchWire.magic.bigEndian) { bytes += $0 }
        bytes += [UInt8](repeating: 0, count: 8)
        return (bytes, seqOffset)
    }

    static func writeSeq(_ seq: UInt8, to buffer: inout ByteBuffer, at offset: Int) {
        buffer.setInteger(UInt8(seq & 0x7F) | 0x80, at: offset)
        buffer.setInteger(seq >> 7, at: offset + 1)
    }

    private static let fixedTimestamp: UInt64 = 1_767_225_600_000

    private static var temperature: SparkplugB.Metric {
        var metric = SparkplugB.Metric()
        metric.name = "temperature"
        metric.datatype = UInt32(SparkplugB.DataType.float.rawValue)
        metric.floatValue = 21.5
        return metric
    }

    private static func dataPrefix() -> [UInt8] {
        var payload = SparkplugB.Payload()
        payload.timestamp = fixedTimestamp
        payload.metrics = [temperature]
        return (try? payload.serializedBytes() as [UInt8]) ?? []
    }
}
