import SwiftProtobuf

/// How much of a payload the server is willing to decode and keep.
public struct SparkplugDecodeLimits: Sendable, Hashable, Codable {
    /// Larger payloads are not decoded (they are still forwarded).
    public var maximumPayloadBytes: Int
    /// Nesting of messages (metrics in templates in metrics, property sets, …) and groups.
    public var maximumMessageDepth: Int
    /// How many metric names a summary keeps.
    public var maximumMetricNames: Int
    /// Longer names are cut (at a character boundary) to this many UTF-8 bytes.
    public var maximumMetricNameBytes: Int

    public init(maximumPayloadBytes: Int = 1 << 20, maximumMessageDepth: Int = 32,
                maximumMetricNames: Int = 256, maximumMetricNameBytes: Int = 256) {
        self.maximumPayloadBytes = maximumPayloadBytes
        self.maximumMessageDepth = maximumMessageDepth
        self.maximumMetricNames = maximumMetricNames
        self.maximumMetricNameBytes = maximumMetricNameBytes
    }
}

/// Why a payload was not decoded. The server forwards such payloads unchanged and counts them.
public enum SparkplugPayloadError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooLarge(size: Int, limit: Int)
    case tooDeep
    case truncated
    case invalidUTF8
    case malformed

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit): "Sparkplug payload of \(size) bytes exceeds the \(limit)-byte decode limit"
        case .tooDeep: "Sparkplug payload nested deeper than the decode limit"
        case .truncated: "Sparkplug payload truncated"
        case .invalidUTF8: "Sparkplug payload with a string that is not UTF-8"
        case .malformed: "Sparkplug payload is not a valid protobuf Payload"
        }
    }
}

/// What the server needs from a Sparkplug B payload: its header fields, the metrics' names and
/// the `bdSeq` metric of births and deaths.
public struct SparkplugPayloadSummary: Sendable, Hashable {
    /// `Payload.timestamp`, milliseconds since the Unix epoch (UTC).
    public var timestamp: UInt64?
    /// `Payload.seq` (0…255 when the publisher follows the specification).
    public var seq: UInt64?
    public var metricCount: Int
    /// Names of the first named metrics, in order, each cut to the name limit.
    public var metricNames: [String]
    /// Some names were left out or cut.
    public var metricNamesTruncated: Bool
    /// The value of the metric named `bdSeq` (NBIRTH and NDEATH), as long or int value.
    public var bdSeq: UInt64?

    public init(timestamp: UInt64? = nil, seq: UInt64? = nil, metricCount: Int = 0, metricNames: [String] = [],
                metricNamesTruncated: Bool = false, bdSeq: UInt64? = nil) {
        self.timestamp = timestamp
        self.seq = seq
        self.metricCount = metricCount
        self.metricNames = metricNames
        self.metricNamesTruncated = metricNamesTruncated
        self.bdSeq = bdSeq
    }

    static let bdSeqMetricName = "bdSeq"

    /// Decodes any contiguous byte collection without copying it (`[UInt8]`, `ArraySlice`,
    /// `UnsafeRawBufferPointer` — e.g. from `ByteBuffer.withUnsafeReadableBytes`); other
    /// collections are copied first. A zero-length payload is a valid, empty `Payload`.
    public static func decode(_ bytes: some Collection<UInt8>,
                              limits: SparkplugDecodeLimits = SparkplugDecodeLimits()) -> Result<SparkplugPayloadSummary, SparkplugPayloadError> {
        let size = bytes.count
        guard size <= limits.maximumPayloadBytes else { return .failure(.tooLarge(size: size, limit: limits.maximumPayloadBytes)) }
        if let result = bytes.withContiguousStorageIfAvailable({ decode(contiguous: UnsafeRawBufferPointer($0), limits: limits) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { decode(contiguous: $0, limits: limits) }
    }

    private static func decode(contiguous bytes: UnsafeRawBufferPointer, limits: SparkplugDecodeLimits) -> Result<SparkplugPayloadSummary, SparkplugPayloadError> {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = limits.maximumMessageDepth
        options.discardUnknownFields = true
        let payload: SparkplugB.Payload
        do {
            payload = try SparkplugB.Payload(serializedBytes: bytes.bytes, options: options)
        } catch let error as BinaryDecodingError {
            return .failure(SparkplugPayloadError(error))
        } catch {
            return .failure(.malformed)
        }
        return .success(SparkplugPayloadSummary(payload, limits: limits))
    }

    init(_ payload: SparkplugB.Payload, limits: SparkplugDecodeLimits) {
        timestamp = payload.hasTimestamp ? payload.timestamp : nil
        seq = payload.hasSeq ? payload.seq : nil
        metricCount = payload.metrics.count
        metricNames = []
        metricNamesTruncated = false
        for metric in payload.metrics where metric.hasName {
            if metric.name == Self.bdSeqMetricName {
                switch metric.value {
                case .longValue(let value)?: bdSeq = value
                case .intValue(let value)?: bdSeq = UInt64(value)
                default: break
                }
            }
            if metricNames.count < limits.maximumMetricNames {
                let (name, cut) = Self.prefix(metric.name, maximumBytes: limits.maximumMetricNameBytes)
                metricNames.append(name)
                if cut { metricNamesTruncated = true }
            } else {
                metricNamesTruncated = true
            }
        }
    }

    /// The longest prefix of `name` within `maximumBytes` UTF-8 bytes that ends at a scalar
    /// boundary.
    static func prefix(_ name: String, maximumBytes: Int) -> (String, cut: Bool) {
        let utf8 = name.utf8
        guard utf8.count > maximumBytes else { return (name, false) }
        var end = utf8.index(utf8.startIndex, offsetBy: max(0, maximumBytes))
        // Back up over continuation bytes (10xxxxxx) so that no scalar is split.
        while end > utf8.startIndex, utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return (String(decoding: utf8[..<end], as: UTF8.self), true)
    }
}

extension SparkplugPayloadError {
    init(_ error: BinaryDecodingError) {
        switch error {
        case .truncated: self = .truncated
        case .invalidUTF8: self = .invalidUTF8
        case .messageDepthLimit: self = .tooDeep
        default: self = .malformed
        }
    }
}
