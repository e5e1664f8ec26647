@testable import BastionLDAP
import NIOCore
import NIOTestUtils
import Testing

@Suite("Framing decoder")
struct DecoderTests {
    @Test func verifierByteByByteAndWhole() throws {
        // The verifier feeds each input whole, byte by byte, and several inputs in one buffer.
        let pairs = sampleMessages.map { (encoded($0), [$0]) }
            + [(buffer(sampleMessages.flatMap(\.serializedBytes)), sampleMessages)]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs, decoderFactory: { LDAPMessageDecoder() })
    }

    @Test func verifierWithALargeEntry() throws {
        // A three-octet length and a body spread over many reads.
        let entry = LDAPMessage(messageID: 8, .searchResultEntry(LDAPEntry(dn: "cn=big", attributes: [
            LDAPAttribute(type: "blob", values: [Array(repeating: 0xAB, count: 70_000)]),
        ])))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(encoded(entry), [entry])], decoderFactory: { LDAPMessageDecoder() })
    }

    @Test func waitsForEveryPrefixWithoutConsuming() throws {
        for message in sampleMessages {
            let bytes = message.serializedBytes
            for cut in 0..<bytes.count {
                var input = buffer(Array(bytes[..<cut]))
                #expect(try LDAPMessageDecoder.decode(bytes: &input) == nil)
                #expect(input.readableBytes == cut)
            }
        }
    }

    @Test func refusesAnOversizedMessageFromItsHeaderAlone() {
        // Only the header has arrived: the announced size alone is refused.
        var header = buffer([0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: LDAPDecodeError.messageTooLarge(announced: 6 + 0x7FFF_FFFF, maximum: 1024 * 1024)) {
            try LDAPMessageDecoder.decode(bytes: &header)
        }
        var justOver = buffer([0x30, 0x82, 0x01, 0x00])
        #expect(throws: LDAPDecodeError.messageTooLarge(announced: 260, maximum: 259)) {
            try LDAPMessageDecoder.decode(bytes: &justOver, maximumMessageSize: 259)
        }
    }

    @Test func acceptsAMessageOfExactlyTheMaximumSize() throws {
        let message = sampleMessages[4]
        let size = message.serializedBytes.count
        #expect(try decodeOne(message.serializedBytes, maximumMessageSize: size) == message)
        #expect(throws: LDAPDecodeError.messageTooLarge(announced: size, maximum: size - 1)) {
            try decodeOne(message.serializedBytes, maximumMessageSize: size - 1)
        }
    }

    @Test func refusesIndefiniteAndOverlongOuterLengths() {
        for bytes: [UInt8] in [[0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00], [0x30, 0x85, 0, 0, 0, 0, 5], [0x30, 0xFF]] {
            var input = buffer(bytes)
            #expect(throws: LDAPDecodeError.self) { try LDAPMessageDecoder.decode(bytes: &input) }
        }
    }

    @Test func refusesAWrongOuterTagFromTheFirstByte() {
        for first: UInt8 in [0x00, 0x04, 0x31, 0x60, 0x16, 0xFF, UInt8(ascii: "G")] {
            var input = buffer([first])
            #expect(throws: LDAPDecodeError.self) { try LDAPMessageDecoder.decode(bytes: &input) }
        }
    }

    @Test func refusesIndefiniteLengthsInside() {
        // A BindResponse whose inner SEQUENCE uses the indefinite form, inside a definite outer length.
        let inner: [UInt8] = [0x61, 0x80] + tlv(0x0A, [0x00]) + octets("") + octets("") + [0x00, 0x00]
        #expect(throws: LDAPDecodeError.self) { try decodeOne(tlv(0x30, tlv(0x02, [0x01]), inner)) }
    }

    @Test(arguments: [
        ("truncated inner field", tlv(0x30, tlv(0x02, [0x01]), [0x61, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00])),
        ("trailing bytes inside", tlv(0x30, tlv(0x02, [0x01]), [0x42, 0x00], [0x00])),
        ("message id negative", tlv(0x30, tlv(0x02, [0xFF]), [0x42, 0x00])),
        ("message id too large", tlv(0x30, tlv(0x02, [0x00, 0x80, 0x00, 0x00, 0x00]), [0x42, 0x00])),
        ("message id huge", tlv(0x30, tlv(0x02, Array(repeating: 0x7F, count: 40)), [0x42, 0x00])),
        ("message id empty", tlv(0x30, tlv(0x02, []), [0x42, 0x00])),
        ("message id not an integer", tlv(0x30, octets("1"), [0x42, 0x00])),
        ("no protocolOp", tlv(0x30, tlv(0x02, [0x01]))),
        ("universal protocolOp", tlv(0x30, tlv(0x02, [0x01]), octets("x"))),
        ("unsupported protocolOp (ModifyRequest)", tlv(0x30, tlv(0x02, [0x01]), tlv(0x66, octets("cn=x"), tlv(0x30, [])))),
        ("result code as INTEGER", tlv(0x30, tlv(0x02, [0x01]), tlv(0x61, tlv(0x02, [0x00]), octets(""), octets("")))),
        ("missing diagnosticMessage", tlv(0x30, tlv(0x02, [0x01]), tlv(0x61, tlv(0x0A, [0x00]), octets("")))),
        ("DN not UTF-8", tlv(0x30, tlv(0x02, [0x01]), tlv(0x64, tlv(0x04, [0xC3, 0x28]), tlv(0x30, [])))),
        ("constructed OCTET STRING", tlv(0x30, tlv(0x02, [0x01]), tlv(0x64, tlv(0x24, octets("cn=x")), tlv(0x30, [])))),
        ("attribute values not a SET", tlv(0x30, tlv(0x02, [0x01]), tlv(0x64, octets("cn=x"), tlv(0x30, tlv(0x30, octets("cn"), tlv(0x30, [])))))),
        ("SASL bind", tlv(0x30, tlv(0x02, [0x01]), tlv(0x60, tlv(0x02, [0x03]), octets(""), tlv(0xA3, octets("PLAIN"))))),
        ("bind version 0", tlv(0x30, tlv(0x02, [0x01]), tlv(0x60, tlv(0x02, [0x00]), octets(""), tlv(0x80, [])))),
        ("empty reference", tlv(0x30, tlv(0x02, [0x01]), tlv(0x73, []))),
        ("scope 3", tlv(0x30, tlv(0x02, [0x01]), tlv(0x63, octets(""), tlv(0x0A, [0x03]), tlv(0x0A, [0x00]), tlv(0x02, [0x00]),
                                                      tlv(0x02, [0x00]), tlv(0x01, [0x00]), tlv(0x87, Array("cn".utf8)), tlv(0x30, [])))),
        ("boolean of two octets", tlv(0x30, tlv(0x02, [0x01]), tlv(0x63, octets(""), tlv(0x0A, [0x00]), tlv(0x0A, [0x00]), tlv(0x02, [0x00]),
                                                      tlv(0x02, [0x00]), tlv(0x01, [0x00, 0x00]), tlv(0x87, Array("cn".utf8)), tlv(0x30, [])))),
        ("empty and filter", searchWithFilter(tlv(0xA0, []))),
        ("not with two filters", searchWithFilter(tlv(0xA2, tlv(0x87, Array("a".utf8)), tlv(0x87, Array("b".utf8))))),
        ("substrings out of order", searchWithFilter(tlv(0xA4, octets("cn"), tlv(0x30, tlv(0x82, [0x61]), tlv(0x80, [0x62]))))),
        ("substrings empty", searchWithFilter(tlv(0xA4, octets("cn"), tlv(0x30, [])))),
        ("extensible filter", searchWithFilter(tlv(0xA9, tlv(0x82, Array("cn".utf8)), tlv(0x83, [0x61])))),
    ] as [(String, [UInt8])])
    func refusesMalformedMessages(_ name: String, bytes: [UInt8]) {
        #expect(throws: LDAPDecodeError.self, "\(name)") { try decodeOne(bytes) }
    }

    @Test func refusesDeepNestingWithoutExhaustingTheStack() {
        // 10,000 nested `not` filters fit in a few tens of kilobytes; the parser's depth limit stops them.
        var filter = tlv(0x87, Array("cn".utf8))
        for _ in 0..<10_000 { filter = tlv(0xA2, filter) }
        #expect(throws: LDAPDecodeError.self) { try decodeOne(searchWithFilter(filter)) }
        // Nested constructed nodes of no meaning at all.
        var nodes: [UInt8] = [0x04, 0x00]
        for _ in 0..<10_000 { nodes = tlv(0x30, nodes) }
        #expect(throws: LDAPDecodeError.self) { try decodeOne(tlv(0x30, tlv(0x02, [0x01]), nodes)) }
    }

    @Test func survivesEveryTruncationAndByteFlipOfValidMessages() {
        // Not a fuzzer, but the same idea with a fixed seed: decoding may fail, never crash.
        var random = SplitMix64(seed: 4511)
        for message in sampleMessages {
            let bytes = message.serializedBytes
            for index in bytes.indices {
                for _ in 0..<8 {
                    var mutated = bytes
                    mutated[index] = UInt8.random(in: 0...255, using: &random)
                    var input = buffer(mutated)
                    _ = try? LDAPMessageDecoder.decode(bytes: &input)
                }
                var truncated = buffer(Array(bytes[..<index]) + [0x00, 0x00])
                _ = try? LDAPMessageDecoder.decode(bytes: &truncated)
            }
        }
    }

    @Test func survivesRandomBytes() {
        var random = SplitMix64(seed: 4513)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...64, using: &random)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            if !bytes.isEmpty { bytes[0] = 0x30 }
            if bytes.count > 1 { bytes[1] = UInt8(min(bytes.count - 2, 0x7F)) }
            var input = buffer(bytes)
            _ = try? LDAPMessageDecoder.decode(bytes: &input)
        }
    }
}

private func searchWithFilter(_ filter: [UInt8]) -> [UInt8] {
    tlv(0x30, tlv(0x02, [0x01]), tlv(0x63, octets(""), tlv(0x0A, [0x00]), tlv(0x0A, [0x00]), tlv(0x02, [0x00]),
                                     tlv(0x02, [0x00]), tlv(0x01, [0x00]), filter, tlv(0x30, [])))
}
