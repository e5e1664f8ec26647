@testable import BastionLDAP
import NIOCore
import Testing

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func encoded(_ message: LDAPMessage) -> ByteBuffer { buffer(message.serializedBytes) }

/// Decodes exactly one message that must fill `bytes`.
func decodeOne(_ bytes: [UInt8], maximumMessageSize: Int = LDAPMessageDecoder.defaultMaximumMessageSize) throws -> LDAPMessage? {
    var input = buffer(bytes)
    let message = try LDAPMessageDecoder.decode(bytes: &input, maximumMessageSize: maximumMessageSize)
    if message != nil { #expect(input.readableBytes == 0) }
    return message
}

/// BER TLV with a definite, minimal length: for building hostile or hand-checked inputs.
func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
    [tag] + berLength(content.count) + content
}

func tlv(_ tag: UInt8, _ parts: [UInt8]...) -> [UInt8] { tlv(tag, parts.flatMap { $0 }) }

func berLength(_ length: Int) -> [UInt8] {
    if length < 0x80 { return [UInt8(length)] }
    var bytes: [UInt8] = []
    var rest = length
    while rest > 0 {
        bytes.insert(UInt8(rest & 0xFF), at: 0)
        rest >>= 8
    }
    return [0x80 | UInt8(bytes.count)] + bytes
}

func octets(_ text: String, tag: UInt8 = 0x04) -> [UInt8] { tlv(tag, Array(text.utf8)) }

/// A small deterministic generator, so that randomized inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One message of every operation the codec knows, for round trips and mutation tests.
let sampleMessages: [LDAPMessage] = [
    LDAPMessage(messageID: 1, .bindRequest(LDAPBindRequest(name: "uid=alice,ou=people,dc=bastion,dc=test", password: Array("alice-pass".utf8)))),
    LDAPMessage(messageID: 1, .bindResponse(LDAPBindResponse(result: LDAPResult(resultCode: .invalidCredentials, diagnosticMessage: "nope")))),
    LDAPMessage(messageID: 2, .unbindRequest),
    LDAPMessage(messageID: 3, .searchRequest(LDAPSearchRequest(
        baseObject: "dc=bastion,dc=test", scope: .singleLevel, derefAliases: .always, sizeLimit: 10, timeLimit: 5,
        typesOnly: true, filter: .and([.equality("objectClass", "person"), .not(.present(attribute: "mail")),
                                       .substrings(attribute: "cn", initial: Array("a".utf8), any: [Array("b".utf8)], final: Array("c".utf8)),
                                       .or([.greaterOrEqual(attribute: "n", value: [0x31]), .lessOrEqual(attribute: "n", value: [0x39]),
                                            .approxMatch(attribute: "sn", value: Array("smith".utf8))])]),
        attributes: ["cn", "memberOf"]))),
    LDAPMessage(messageID: 3, .searchResultEntry(LDAPEntry(dn: "uid=alice,ou=people,dc=bastion,dc=test", attributes: [
        LDAPAttribute(type: "cn", stringValues: ["Alice Example"]),
        LDAPAttribute(type: "jpegPhoto", values: [[0x00, 0xFF, 0xD8]]),
        LDAPAttribute(type: "empty", values: []),
    ]))),
    LDAPMessage(messageID: 3, .searchResultReference(["ldap://other.example/dc=x"])),
    LDAPMessage(messageID: 3, .searchResultDone(LDAPResult(resultCode: .referral, matchedDN: "dc=test", diagnosticMessage: "go away", referral: ["ldap://a/", "ldap://b/"]))),
    LDAPMessage(messageID: 4, .extendedRequest(.startTLS)),
    LDAPMessage(messageID: 4, .extendedRequest(LDAPExtendedRequest(name: "1.2.3", value: [1, 2, 3]))),
    LDAPMessage(messageID: 4, .extendedResponse(LDAPExtendedResponse(result: LDAPResult(resultCode: .success), name: LDAPExtendedRequest.startTLSName))),
    LDAPMessage(messageID: 0, .extendedResponse(LDAPExtendedResponse(result: LDAPResult(resultCode: .unavailable), name: LDAPExtendedResponse.noticeOfDisconnectionName, value: [9]))),
    LDAPMessage(messageID: Int32.max, .searchResultDone(LDAPResult(resultCode: .unknown(4711)))),
]
