import NIOCore
import SwiftASN1

/// One LDAP protocol data unit (RFC 4511 §4.1.1). Controls are skipped when decoding and never sent.
public struct LDAPMessage: Sendable, Hashable {
    /// 0 is reserved for unsolicited notifications; requests use 1...Int32.max.
    public var messageID: Int32
    public var protocolOp: LDAPProtocolOp

    public init(messageID: Int32, _ protocolOp: LDAPProtocolOp) {
        self.messageID = messageID
        self.protocolOp = protocolOp
    }
}

/// The operations this client sends or understands. Decoding any other operation is an error.
public enum LDAPProtocolOp: Sendable, Hashable {
    case bindRequest(LDAPBindRequest)
    case bindResponse(LDAPBindResponse)
    case unbindRequest
    case searchRequest(LDAPSearchRequest)
    case searchResultEntry(LDAPEntry)
    case searchResultReference([String])
    case searchResultDone(LDAPResult)
    case extendedRequest(LDAPExtendedRequest)
    case extendedResponse(LDAPExtendedResponse)

    var name: String {
        switch self {
        case .bindRequest: "BindRequest"
        case .bindResponse: "BindResponse"
        case .unbindRequest: "UnbindRequest"
        case .searchRequest: "SearchRequest"
        case .searchResultEntry: "SearchResultEntry"
        case .searchResultReference: "SearchResultReference"
        case .searchResultDone: "SearchResultDone"
        case .extendedRequest: "ExtendedRequest"
        case .extendedResponse: "ExtendedResponse"
        }
    }
}

extension LDAPMessage {
    private static let unbindTag: UInt = 2
    private static let searchResultDoneTag: UInt = 5

    /// The BER encoding (DER serialization, which is valid BER).
    public var serializedBytes: [UInt8] {
        var coder = DER.Serializer()
        coder.appendConstructedNode(identifier: .sequence) { coder in
            coder.appendInteger(Int(messageID))
            switch protocolOp {
            case .bindRequest(let request): request.serialize(into: &coder)
            case .bindResponse(let response): response.serialize(into: &coder)
            case .unbindRequest: coder.appendPrimitiveNode(identifier: .application(Self.unbindTag)) { _ in }
            case .searchRequest(let request): request.serialize(into: &coder)
            case .searchResultEntry(let entry): entry.serialize(into: &coder)
            case .searchResultReference(let uris): SearchResultReference.serialize(uris, into: &coder)
            case .searchResultDone(let result):
                coder.appendConstructedNode(identifier: .application(Self.searchResultDoneTag)) { result.serializeComponents(into: &$0) }
            case .extendedRequest(let request): request.serialize(into: &coder)
            case .extendedResponse(let response): response.serialize(into: &coder)
            }
        }
        return coder.serializedBytes
    }

    public func write(to buffer: inout ByteBuffer) {
        buffer.writeBytes(serializedBytes)
    }

    /// Decodes a whole message from its BER bytes (exactly one outer SEQUENCE).
    init(berEncoded bytes: [UInt8]) throws(LDAPDecodeError) {
        let root: ASN1Node
        do {
            root = try SwiftASN1.BER.parse(bytes)
        } catch {
            throw .malformedMessage("BER: \(error)")
        }
        do {
            try self.init(root: root)
        } catch let error as BERShapeError {
            throw .malformedMessage(error.reason)
        } catch let error as LDAPDecodeError {
            throw error
        } catch {
            throw .malformedMessage("\(error)")
        }
    }

    private init(root: ASN1Node) throws {
        var fields = try BERField.children(of: root, .sequence, "LDAPMessage").makeIterator()
        messageID = Int32(try BERField.integer(of: BERField.next(&fields, "messageID"), .integer, in: 0...Int(Int32.max), "messageID"))
        let op = try BERField.next(&fields, "protocolOp")
        // What follows (controls [0], or later extensions) is ignored, as RFC 4511 §4 asks.
        guard op.identifier.tagClass == .application else {
            throw BERShapeError("protocolOp: expected an APPLICATION tag, found \(op.identifier)")
        }
        switch op.identifier.tagNumber {
        case LDAPBindRequest.tag: protocolOp = .bindRequest(try LDAPBindRequest(berNode: op))
        case LDAPBindResponse.tag: protocolOp = .bindResponse(try LDAPBindResponse(berNode: op))
        case Self.unbindTag:
            _ = try BERField.octets(of: op, .application(Self.unbindTag), "UnbindRequest")
            protocolOp = .unbindRequest
        case LDAPSearchRequest.tag: protocolOp = .searchRequest(try LDAPSearchRequest(berNode: op))
        case LDAPEntry.tag: protocolOp = .searchResultEntry(try LDAPEntry(berNode: op))
        case SearchResultReference.tag: protocolOp = .searchResultReference(try SearchResultReference.parse(op))
        case Self.searchResultDoneTag:
            var components = try BERField.children(of: op, .application(Self.searchResultDoneTag), "SearchResultDone").makeIterator()
            protocolOp = .searchResultDone(try LDAPResult(components: &components))
        case LDAPExtendedRequest.tag: protocolOp = .extendedRequest(try LDAPExtendedRequest(berNode: op))
        case LDAPExtendedResponse.tag: protocolOp = .extendedResponse(try LDAPExtendedResponse(berNode: op))
        case let tag: throw LDAPDecodeError.unsupportedOperation(tag: Int(tag))
        }
    }
}
