import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Ed25519 signatures on NCMD and DCMD, so that edge nodes (through the server) act only on commands
/// from a host application holding the key.
///
/// Signed bytes, in order:
/// 1. the 16 ASCII bytes `spBv1.0-cmd-sig\n` (domain separation: a command signature can never be
///    replayed as a signature over something else);
/// 2. the topic's UTF-8 length as a big-endian UInt16;
/// 3. the topic's UTF-8 bytes;
/// 4. the payload bytes with the signature metric entry removed (see below), or the payload as it
///    is when it has none.
///
/// The signature (64 bytes) travels either
/// - in the MQTT 5 user property `bastion-signature`, as standard base64 with padding, or
/// - for MQTT 3.1.1 hosts, as the LAST `metrics` entry (field 2) of the payload, a metric named
///   `bastion/signature` whose value is a string (base64) or bytes (the raw 64 bytes, or base64
///   text). The verifier cuts exactly that entry's bytes (tag, length, contents) out of the
///   payload and verifies over the rest.
///
/// Both carriers sign the same bytes, so one signature may travel both ways at once.
/// A signature binds topic and payload, not time: replay of a captured command is limited by the
/// receiver checking the payload's timestamp.
public enum SparkplugCommandSignature {
    public static let domain: [UInt8] = Array("spBv1.0-cmd-sig\n".utf8)
    public static let userPropertyName = "bastion-signature"
    public static let metricName = "bastion/signature"
    public static let signatureSize = 64
    /// A signature metric's nesting is shallow; deeper ones are refused.
    static let metricDepthLimit = 8

    /// The bytes that are signed for `topic` and a payload without signature metric.
    public static func signedBytes(topic: String, payloadWithoutSignature payload: some Collection<UInt8>) throws(SparkplugSigningError) -> [UInt8] {
        let topicBytes = topic.utf8
        guard topicBytes.count <= Int(UInt16.max) else { throw .topicTooLong }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(domain.count + 2 + topicBytes.count + payload.count)
        bytes.append(contentsOf: domain)
        bytes.append(UInt8(truncatingIfNeeded: topicBytes.count >> 8))
        bytes.append(UInt8(truncatingIfNeeded: topicBytes.count))
        bytes.append(contentsOf: topicBytes)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// The payload without its trailing signature metric, and that metric's range if there was one.
    /// Nil when the payload is not wire format.
    static func strippingSignatureMetric(_ payload: [UInt8]) -> (payload: ArraySlice<UInt8>, removed: Range<Int>?, metric: SparkplugB.Metric?)? {
        switch SparkplugWire.lastMetric(in: payload, named: metricName, depthLimit: metricDepthLimit) {
        case .found(let metric, let range):
            var rest = ArraySlice(payload[..<range.lowerBound])
            rest.append(contentsOf: payload[range.upperBound...])
            return (rest, range, metric)
        case .absent:
            return (payload[...], nil, nil)
        case .malformed:
            return nil
        }
    }
}

public enum SparkplugSigningError: Error, Sendable, Hashable {
    /// Longer than an MQTT topic can be (65,535 bytes).
    case topicTooLong
    /// The payload is not protobuf wire format, so no metric can be appended to it.
    case payloadNotProtobuf
    /// The signing primitive failed.
    case signingFailed
}

/// Signs commands; for tests, examples and tools that act as a host application.
public enum SparkplugCommandSigner {
    public enum MetricEncoding: Sendable, Hashable {
        /// A String metric (datatype 12) holding base64.
        case base64String
        /// A Bytes metric (datatype 17) holding the raw 64 bytes.
        case rawBytes
    }

    /// A signature for `topic` and `payload`, as the user property value and as the payload with
    /// the signature metric appended. A trailing signature metric already in `payload` is replaced.
    public static func sign(topic: String, payload: [UInt8], key: Curve25519.Signing.PrivateKey,
                            metricEncoding: MetricEncoding = .base64String) throws(SparkplugSigningError) -> (userPropertyValue: String, payloadWithMetric: [UInt8]) {
        guard let (unsigned, _, _) = SparkplugCommandSignature.strippingSignatureMetric(payload) else { throw .payloadNotProtobuf }
        let message = try SparkplugCommandSignature.signedBytes(topic: topic, payloadWithoutSignature: unsigned)
        let signature: Data
        do {
            signature = try key.signature(for: message)
        } catch {
            throw .signingFailed
        }
        let base64 = signature.base64EncodedString()

        var metric = SparkplugB.Metric()
        metric.name = SparkplugCommandSignature.metricName
        switch metricEncoding {
        case .base64String:
            metric.datatype = UInt32(SparkplugB.DataType.string.rawValue)
            metric.stringValue = base64
        case .rawBytes:
            metric.datatype = UInt32(SparkplugB.DataType.bytes.rawValue)
            metric.bytesValue = signature
        }
        let entry: [UInt8]
        do {
            entry = try metric.serializedBytes()
        } catch {
            throw .signingFailed
        }
        var withMetric = Array(unsigned)
        ProtobufWire.appendTag(SparkplugWire.metricsField, .lengthDelimited, to: &withMetric)
        ProtobufWire.appendVarint(UInt64(entry.count), to: &withMetric)
        withMetric.append(contentsOf: entry)
        return (base64, withMetric)
    }
}

/// Where a verified signature was found.
public enum SparkplugSignatureCarrier: String, Sendable, Hashable {
    case userProperty
    case metric
}

/// A command whose signature checked out.
public struct SparkplugVerifiedCommand: Sendable, Hashable {
    public var carrier: SparkplugSignatureCarrier
    /// The bytes of the payload's signature metric, if it had one: a server that strips the
    /// metric before delivery cuts out exactly this range.
    public var signatureMetricRange: Range<Int>?
}

public enum SparkplugSignatureFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Malformation: String, Sendable, Hashable {
        case notBase64
        case wrongLength
        case metricWithoutValue
        case payloadNotProtobuf
        case topicTooLong
    }

    /// Neither a user property nor a signature metric.
    case missing
    case malformed(Malformation)
    /// Well-formed, but not made by any of the keys over these bytes.
    case badSignature

    public var description: String {
        switch self {
        case .missing: "command without signature"
        case .malformed(let what): "malformed command signature (\(what.rawValue))"
        case .badSignature: "command signature does not verify"
        }
    }
}

public enum SparkplugCommandVerifier {
    /// Checks the signature of a command published on `topic`. `userProperty` is the value of the
    /// `bastion-signature` user property (nil when absent); without it the payload's last metric must
    /// be the signature metric. A user property takes precedence over a metric.
    public static func verify(topic: String, payload: [UInt8], userProperty: String?,
                              publicKey: Curve25519.Signing.PublicKey) -> Result<SparkplugVerifiedCommand, SparkplugSignatureFailure> {
        verify(topic: topic, payload: payload, userProperty: userProperty, publicKeys: [publicKey])
    }

    /// As above, accepting a signature by any of `publicKeys` (key rotation, several hosts).
    public static func verify(topic: String, payload: [UInt8], userProperty: String?,
                              publicKeys: [Curve25519.Signing.PublicKey]) -> Result<SparkplugVerifiedCommand, SparkplugSignatureFailure> {
        let stripped = SparkplugCommandSignature.strippingSignatureMetric(payload)
        let signature: Data
        let carrier: SparkplugSignatureCarrier
        let unsigned: ArraySlice<UInt8>
        if let userProperty {
            guard let decoded = Data(base64Encoded: userProperty) else { return .failure(.malformed(.notBase64)) }
            signature = decoded
            carrier = .userProperty
            // A payload that is not wire format has no signature metric: it is signed as it is.
            unsigned = stripped?.payload ?? payload[...]
        } else {
            guard let stripped else { return .failure(.malformed(.payloadNotProtobuf)) }
            guard let metric = stripped.metric else { return .failure(.missing) }
            switch signatureBytes(of: metric) {
            case .success(let bytes): signature = bytes
            case .failure(let failure): return .failure(failure)
            }
            carrier = .metric
            unsigned = stripped.payload
        }
        guard signature.count == SparkplugCommandSignature.signatureSize else { return .failure(.malformed(.wrongLength)) }
        let message: [UInt8]
        do {
            message = try SparkplugCommandSignature.signedBytes(topic: topic, payloadWithoutSignature: unsigned)
        } catch {
            return .failure(.malformed(.topicTooLong))
        }
        for key in publicKeys where key.isValidSignature(signature, for: message) {
            return .success(SparkplugVerifiedCommand(carrier: carrier, signatureMetricRange: stripped?.removed))
        }
        return .failure(.badSignature)
    }

    private static func signatureBytes(of metric: SparkplugB.Metric) -> Result<Data, SparkplugSignatureFailure> {
        switch metric.value {
        case .stringValue(let text)?:
            guard let bytes = Data(base64Encoded: text) else { return .failure(.malformed(.notBase64)) }
            return .success(bytes)
        case .bytesValue(let raw)?:
            if raw.count == SparkplugCommandSignature.signatureSize { return .success(raw) }
            guard let bytes = Data(base64Encoded: raw) else { return .failure(.malformed(.notBase64)) }
            return .success(bytes)
        default:
            return .failure(.malformed(.metricWithoutValue))
        }
    }
}
