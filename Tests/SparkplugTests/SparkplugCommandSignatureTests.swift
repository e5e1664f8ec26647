import Crypto
import Foundation
import SwiftProtobuf
import Testing
@testable import Sparkplug

/// A command signed with RFC 8032's first test key; the signature was made independently (Python
/// `cryptography`, payload serialised by Python `protobuf` from the same proto).
enum SignatureVector {
    static let privateKeySeed = bytes(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    static let publicKey = bytes(hex: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    static let topic = "spBv1.0/G1/NCMD/E1"
    /// timestamp 1796299070000, metric "Node Control/Rebirth" = true (Boolean).
    static let payload = bytes(hex: "08b0b492dea334121a0a144e6f646520436f6e74726f6c2f52656269727468200b7001")
    static let signedBytes = bytes(hex: "73704276312e302d636d642d7369670a001273704276312e302f47312f4e434d442f4531"
        + "08b0b492dea334121a0a144e6f646520436f6e74726f6c2f52656269727468200b7001")
    static let signature = bytes(hex: "ad2e5e68bd86be7d5307c66d0f9eb41a6bf8cd8c7ef9c45ac026b818df80c3de"
        + "772a6db2e50295de1fd71ebba95c2d8f69aaed857d41b7268f3b6f5962979f00")
    static let userProperty = "rS5eaL2Gvn1TB8ZtD560Gmv4zYx++cRawCa4GN+Aw953Km2y5QKV3h/XHrupXC2PaarthX1BtyaPO29ZYpefAA=="
    /// `payload` with the metric `bastion/signature` (String, base64) appended.
    static let payloadWithMetric = bytes(hex: "08b0b492dea334121a0a144e6f646520436f6e74726f6c2f52656269727468200b7001"
        + "126f0a1162617374696f6e2f7369676e6174757265200c7a5872533565614c3247766e315442385a7444353630476d76347a59"
        + "782b2b63526177436134474e2b41773935334b6d327935514b5633682f5848727570584332506161727468583142747961504f"
        + "32395a5970656641413d3d")

    static var key: Curve25519.Signing.PrivateKey { try! .init(rawRepresentation: privateKeySeed) }
    static var verifyingKey: Curve25519.Signing.PublicKey { try! .init(rawRepresentation: publicKey) }
}

@Suite struct SparkplugCommandSignatureTests {
    typealias V = SignatureVector

    @Test func signedBytesMatchTheSpecification() throws {
        let signed = try SparkplugCommandSignature.signedBytes(topic: V.topic, payloadWithoutSignature: V.payload)
        #expect(signed == V.signedBytes)
        #expect(Array(signed.prefix(16)) == Array("spBv1.0-cmd-sig\n".utf8))
        #expect(signed[16] == 0x00 && signed[17] == 18)
        #expect(V.key.publicKey.rawRepresentation == Data(V.publicKey))
    }

    @Test func vectorVerifiesInBothCarriers() {
        let byProperty = SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payload, userProperty: V.userProperty,
                                                         publicKey: V.verifyingKey)
        #expect(byProperty == .success(SparkplugVerifiedCommand(carrier: .userProperty, signatureMetricRange: nil)))
        let byMetric = SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payloadWithMetric, userProperty: nil,
                                                       publicKey: V.verifyingKey)
        #expect(byMetric == .success(SparkplugVerifiedCommand(carrier: .metric, signatureMetricRange: V.payload.count..<V.payloadWithMetric.count)))
        // Both at once: the property is checked over the payload without the metric.
        let both = SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payloadWithMetric, userProperty: V.userProperty,
                                                   publicKey: V.verifyingKey)
        #expect((try? both.get().carrier) == .userProperty)
    }

    @Test func signerReproducesTheVector() throws {
        let (property, withMetric) = try SparkplugCommandSigner.sign(topic: V.topic, payload: V.payload, key: V.key)
        // Ed25519 is deterministic; Apple's CryptoKit randomises its signatures, so there only
        // their validity is checked.
        #if !canImport(Darwin)
        #expect(property == V.userProperty)
        #expect(withMetric == V.payloadWithMetric)
        #endif
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payload, userProperty: property, publicKey: V.verifyingKey).isSuccess)
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: withMetric, userProperty: nil, publicKey: V.verifyingKey).isSuccess)
        let decoded = try decoded(withMetric)
        #expect(decoded.metrics.map(\.name) == ["Node Control/Rebirth", "bastion/signature"])
    }

    @Test func rawBytesMetricAndReSigning() throws {
        let key = Curve25519.Signing.PrivateKey()
        let topic = "spBv1.0/G1/DCMD/E1/D1"
        let command = encoded(payload(timestamp: 5, metrics: [metric("setpoint", double: 3)]))
        let (_, raw) = try SparkplugCommandSigner.sign(topic: topic, payload: command, key: key, metricEncoding: .rawBytes)
        let last = try #require(try decoded(raw).metrics.last)
        #expect(last.bytesValue.count == 64)
        #expect(last.datatype == UInt32(SparkplugB.DataType.bytes.rawValue))
        #expect(SparkplugCommandVerifier.verify(topic: topic, payload: raw, userProperty: nil, publicKey: key.publicKey).isSuccess)
        // Signing a signed payload replaces the signature metric rather than adding a second one.
        let (_, again) = try SparkplugCommandSigner.sign(topic: topic, payload: raw, key: key)
        #expect(try decoded(again).metrics.count == 2)
        #expect(SparkplugCommandVerifier.verify(topic: topic, payload: again, userProperty: nil, publicKey: key.publicKey).isSuccess)
    }

    @Test func base64TextInABytesMetric() throws {
        var signed = SparkplugB.Payload()
        signed = try decoded(V.payload)
        var signature = SparkplugB.Metric()
        signature.name = "bastion/signature"
        signature.bytesValue = Data(V.userProperty.utf8)
        signed.metrics.append(signature)
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: encoded(signed), userProperty: nil, publicKey: V.verifyingKey).isSuccess)
    }

    /// A 3.1.1 host that re-serialises the payload with a protobuf library puts `seq` (field 3)
    /// after the metrics: the signature metric is still the last metrics entry.
    @Test func metricLastAmongMetricsButNotLastField() throws {
        let key = Curve25519.Signing.PrivateKey()
        let topic = "spBv1.0/G1/NCMD/E1"
        let command = payload(timestamp: 9, seq: 4, metrics: [metric("Node Control/Rebirth")])
        let unsigned = encoded(command)
        let signature = try key.signature(for: SparkplugCommandSignature.signedBytes(topic: topic, payloadWithoutSignature: unsigned))
        var withSignature = command
        var entry = SparkplugB.Metric()
        entry.name = "bastion/signature"
        entry.stringValue = signature.base64EncodedString()
        withSignature.metrics.append(entry)
        let reserialised = encoded(withSignature)
        #expect(reserialised.last == 4)  // seq is the last field
        let result = SparkplugCommandVerifier.verify(topic: topic, payload: reserialised, userProperty: nil, publicKey: key.publicKey)
        #expect(result.isSuccess)
    }

    @Test func failures() throws {
        let verify = { (topic: String, payload: [UInt8], property: String?) in
            SparkplugCommandVerifier.verify(topic: topic, payload: payload, userProperty: property, publicKey: V.verifyingKey)
        }
        #expect(verify(V.topic, V.payload, nil) == .failure(.missing))
        #expect(verify(V.topic, [], nil) == .failure(.missing))
        #expect(verify(V.topic, V.payload, "not base64!") == .failure(.malformed(.notBase64)))
        #expect(verify(V.topic, V.payload, Data(repeating: 1, count: 10).base64EncodedString()) == .failure(.malformed(.wrongLength)))
        #expect(verify(V.topic, [0x12, 0x05, 0x01], nil) == .failure(.malformed(.payloadNotProtobuf)))
        #expect(verify("spBv1.0/G1/NCMD/E2", V.payload, V.userProperty) == .failure(.badSignature))
        #expect(verify("spBv1.0/G1/NCMD/E2", V.payloadWithMetric, nil) == .failure(.badSignature))
        var tampered = V.payload
        tampered[tampered.count - 1] = 0x00  // Rebirth = false
        #expect(verify(V.topic, tampered, V.userProperty) == .failure(.badSignature))
        let otherKey = Curve25519.Signing.PrivateKey().publicKey
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payload, userProperty: V.userProperty, publicKey: otherKey) == .failure(.badSignature))
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payload, userProperty: V.userProperty,
                                                publicKeys: [otherKey, V.verifyingKey]).isSuccess)
        #expect(SparkplugCommandVerifier.verify(topic: V.topic, payload: V.payload, userProperty: V.userProperty, publicKeys: []) == .failure(.badSignature))

        // Signature metric without a value, with a non-base64 string, and one that is not last.
        var noValue = try decoded(V.payload)
        var empty = SparkplugB.Metric()
        empty.name = "bastion/signature"
        noValue.metrics.append(empty)
        #expect(verify(V.topic, encoded(noValue), nil) == .failure(.malformed(.metricWithoutValue)))
        var badText = try decoded(V.payload)
        var text = SparkplugB.Metric()
        text.name = "bastion/signature"
        text.stringValue = "%%%"
        badText.metrics.append(text)
        #expect(verify(V.topic, encoded(badText), nil) == .failure(.malformed(.notBase64)))
        var notLast = try decoded(V.payloadWithMetric)
        notLast.metrics.append(metric("after", long: 1))
        #expect(verify(V.topic, encoded(notLast), nil) == .failure(.missing))

        // A user property over a payload that is not protobuf signs the bytes as they are.
        let opaque: [UInt8] = [0xFF, 0xFF]
        let signature = try V.key.signature(for: SparkplugCommandSignature.signedBytes(topic: V.topic, payloadWithoutSignature: opaque))
        #expect(verify(V.topic, opaque, signature.base64EncodedString()).isSuccess)

        #expect(throws: SparkplugSigningError.payloadNotProtobuf) { try SparkplugCommandSigner.sign(topic: V.topic, payload: opaque, key: V.key) }
        let longTopic = String(repeating: "t", count: 65_536)
        #expect(throws: SparkplugSigningError.topicTooLong) { try SparkplugCommandSignature.signedBytes(topic: longTopic, payloadWithoutSignature: []) }
        #expect(verify(longTopic, V.payload, V.userProperty) == .failure(.malformed(.topicTooLong)))
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
