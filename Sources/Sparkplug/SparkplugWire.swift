import SwiftProtobuf

/// Edits to a Sparkplug B `Payload` made on its wire bytes, so that everything the server does not
/// mean to change — unknown fields, extensions, field order, encodings a re-serialisation would
/// normalise — reaches subscribers as the publisher wrote it.
public enum SparkplugWire {
    static let timestampField: UInt32 = 1
    static let metricsField: UInt32 = 2
    static let seqField: UInt32 = 3

    /// The top-level `seq` of a payload; nil when it has none or is not protobuf.
    public static func seq(in payload: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard case .wellFormed(let seq?) = ProtobufWire.lastVarint(seqField, in: payload) else { return nil }
        return seq
    }

    /// `payload` with `Payload.timestamp` (field 1, uint64) set to `milliseconds`: the first
    /// timestamp field is rewritten in place, later duplicates are dropped (a decoder keeps the last
    /// one it reads, so the new value must be the only one), and the field is put first when the
    /// payload had none. Every other field's bytes stay as they were, in order.
    ///
    /// Nil when the payload is not protobuf wire format at its top level, or when field 1 is not a
    /// varint there (no decoder would accept it); the caller then forwards it unchanged.
    /// A Sparkplug Aware server uses this on NDEATH, whose stored timestamp is from CONNECT time.
    public static func replacingTimestamp(in payload: [UInt8], with milliseconds: UInt64) -> [UInt8]? {
        guard let fields = ProtobufWire.fields(payload) else { return nil }
        var replacement: [UInt8] = []
        ProtobufWire.appendTag(timestampField, .varint, to: &replacement)
        ProtobufWire.appendVarint(milliseconds, to: &replacement)

        var output: [UInt8] = []
        output.reserveCapacity(payload.count + replacement.count)
        var copiedUpTo = 0
        var replaced = false
        for field in fields where field.number == timestampField {
            guard field.wireType == .varint else { return nil }
            output.append(contentsOf: payload[copiedUpTo..<field.range.lowerBound])
            if !replaced {
                output.append(contentsOf: replacement)
                replaced = true
            }
            copiedUpTo = field.range.upperBound
        }
        if !replaced { output.append(contentsOf: replacement) }
        output.append(contentsOf: payload[copiedUpTo...])
        return output
    }

    /// The last `metrics` entry (field 2) of a payload whose name is `name`, with the byte range
    /// of the whole entry (tag, length and contents). `.malformed` when the payload is not wire
    /// format; `.absent` when the last metric has another name or there are no metrics.
    static func lastMetric(in payload: [UInt8], named name: String, depthLimit: Int) -> LastMetric {
        guard let fields = ProtobufWire.fields(payload) else { return .malformed }
        guard let last = fields.last(where: { $0.number == metricsField }) else { return .absent }
        guard last.wireType == .lengthDelimited else { return .malformed }
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = depthLimit
        options.discardUnknownFields = true
        guard let metric = try? SparkplugB.Metric(serializedBytes: Array(payload[last.contents]), options: options) else {
            return .malformed
        }
        guard metric.hasName, metric.name == name else { return .absent }
        return .found(metric, last.range)
    }

    enum LastMetric {
        case found(SparkplugB.Metric, Range<Int>)
        case absent
        case malformed
    }
}
