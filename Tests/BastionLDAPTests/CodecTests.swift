@testable import BastionLDAP
import NIOCore
import Testing

@Suite("Message codec")
struct CodecTests {
    @Test(arguments: sampleMessages)
    func roundTrip(message: LDAPMessage) throws {
        #expect(try decodeOne(message.serializedBytes) == message)
    }

    @Test func bindRequestWireBytes() throws {
        // Built by hand from RFC 4511 §4.2: [APPLICATION 0] { version 3, name, simple [0] }.
        let expected = tlv(0x30, tlv(0x02, [0x05]), tlv(0x60, tlv(0x02, [0x03]), octets("cn=x"), tlv(0x80, Array("y".utf8))))
        let message = LDAPMessage(messageID: 5, .bindRequest(LDAPBindRequest(name: "cn=x", password: Array("y".utf8))))
        #expect(message.serializedBytes == expected)
        #expect(expected == [0x30, 0x11, 0x02, 0x01, 0x05, 0x60, 0x0C, 0x02, 0x01, 0x03, 0x04, 0x04, 0x63, 0x6E, 0x3D, 0x78, 0x80, 0x01, 0x79])
    }

    @Test func unbindAndStartTLSWireBytes() {
        #expect(LDAPMessage(messageID: 9, .unbindRequest).serializedBytes == [0x30, 0x05, 0x02, 0x01, 0x09, 0x42, 0x00])
        let startTLS = LDAPMessage(messageID: 1, .extendedRequest(.startTLS)).serializedBytes
        #expect(startTLS == tlv(0x30, tlv(0x02, [0x01]), tlv(0x77, octets("1.3.6.1.4.1.1466.20037", tag: 0x80))))
    }

    @Test func searchRequestWireBytes() {
        let request = LDAPSearchRequest(baseObject: "dc=t", scope: .wholeSubtree, derefAliases: .never, sizeLimit: 2,
                                        timeLimit: 0, typesOnly: false, filter: .equality("uid", "a"), attributes: ["1.1"])
        let expected = tlv(0x30, tlv(0x02, [0x07]), tlv(0x63,
            octets("dc=t"), tlv(0x0A, [0x02]), tlv(0x0A, [0x00]), tlv(0x02, [0x02]), tlv(0x02, [0x00]), tlv(0x01, [0x00]),
            tlv(0xA3, octets("uid"), octets("a")), tlv(0x30, octets("1.1"))))
        #expect(LDAPMessage(messageID: 7, .searchRequest(request)).serializedBytes == expected)
    }

    @Test func integersUseMinimalTwosComplement() {
        for (value, bytes) in [(0, [0x00]), (127, [0x7F]), (128, [0x00, 0x80]), (255, [0x00, 0xFF]), (256, [0x01, 0x00]),
                               (Int(Int32.max), [0x7F, 0xFF, 0xFF, 0xFF])] as [(Int, [UInt8])] {
            let message = LDAPMessage(messageID: Int32(value), .unbindRequest)
            #expect(message.serializedBytes == tlv(0x30, tlv(0x02, bytes), [0x42, 0x00]), "\(value)")
        }
    }

    @Test func decodesAResponseWithControlsAndUnknownTrailingFields() throws {
        // resultCode, matchedDN, diagnosticMessage, then an unknown [9] field; controls [0] follow the op.
        let bytes = tlv(0x30, tlv(0x02, [0x02]), tlv(0x61, tlv(0x0A, [0x00]), octets(""), octets(""), tlv(0x89, [1])),
                        tlv(0xA0, tlv(0x30, octets("1.2.840.113556.1.4.319"))))
        #expect(try decodeOne(bytes) == LDAPMessage(messageID: 2, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .success)))))
    }

    @Test func acceptsNonMinimalLengthsAsActiveDirectorySendsThem() throws {
        // AD encodes every length in the four-octet long form.
        func long(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
            let n = content.count
            return [tag, 0x84, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + content
        }
        let bytes = long(0x30, tlv(0x02, [0x01]) + long(0x61, tlv(0x0A, [0x31]) + long(0x04, []) + long(0x04, Array("bad".utf8))))
        let message = try #require(try decodeOne(bytes))
        #expect(message == LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .invalidCredentials, diagnosticMessage: "bad")))))
    }

    @Test func resultCodesKeepUnknownValues() throws {
        #expect(LDAPResultCode(rawValue: 49) == .invalidCredentials)
        #expect(LDAPResultCode(rawValue: 4711) == .unknown(4711))
        #expect(LDAPResultCode.unknown(49) == .invalidCredentials)
        #expect(LDAPResultCode(rawValue: 80) == .other)
        #expect(LDAPResultCode.unknown(4711).rawValue == 4711)
        for raw in 0...100 { #expect(LDAPResultCode(rawValue: raw).rawValue == raw) }
        let bytes = tlv(0x30, tlv(0x02, [0x01]), tlv(0x65, tlv(0x0A, [0x10, 0x00]), octets(""), octets("")))
        #expect(try decodeOne(bytes)?.protocolOp == .searchResultDone(LDAPResult(resultCode: .unknown(4096))))
    }

    @Test func bindRequestDescriptionHidesThePassword() {
        let request = LDAPBindRequest(name: "cn=x", password: Array("secret".utf8))
        #expect(!request.description.contains("secret"))
    }

    @Test func entryAttributeLookupIgnoresCase() {
        let entry = LDAPEntry(dn: "cn=x", attributes: [LDAPAttribute(type: "memberOf", stringValues: ["cn=a", "cn=b"]),
                                                     LDAPAttribute(type: "bin", values: [[0xFF]])])
        #expect(entry.stringValues(of: "MEMBEROF") == ["cn=a", "cn=b"])
        #expect(entry.values(of: "bin") == [[0xFF]])
        #expect(entry.stringValues(of: "bin").isEmpty)
        #expect(entry.values(of: "missing").isEmpty)
    }

    @Test func encoderWritesTheSameBytes() throws {
        var out = ByteBuffer()
        try LDAPMessageEncoder().encode(data: sampleMessages[0], out: &out)
        #expect(Array(out.readableBytesView) == sampleMessages[0].serializedBytes)
    }
}
