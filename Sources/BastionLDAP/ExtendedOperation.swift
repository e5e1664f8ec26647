import SwiftASN1

/// ExtendedRequest (RFC 4511 §4.12).
public struct LDAPExtendedRequest: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]? = nil) {
        self.name = name
        self.value = value
    }

    /// The StartTLS operation's OID (RFC 4511 §4.14.1).
    public static let startTLSName = "1.3.6.1.4.1.1466.20037"
    public static let startTLS = LDAPExtendedRequest(name: startTLSName)

    static let tag: UInt = 23

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            coder.appendString(name, identifier: .context(0))
            if let value { coder.appendOctets(value, identifier: .context(1)) }
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "ExtendedRequest").makeIterator()
        name = try BERField.string(of: BERField.next(&fields, "requestName"), .context(0), "requestName")
        value = nil
        if let node = fields.next(), node.identifier == .context(1) {
            value = Array(try BERField.octets(of: node, .context(1), "requestValue"))
        }
    }
}

/// ExtendedResponse (RFC 4511 §4.12). Also used, with message id 0, for the unsolicited Notice
/// of Disconnection (§4.4.1).
public struct LDAPExtendedResponse: Sendable, Hashable {
    public var result: LDAPResult
    public var name: String?
    public var value: [UInt8]?

    public init(result: LDAPResult, name: String? = nil, value: [UInt8]? = nil) {
        self.result = result
        self.name = name
        self.value = value
    }

    /// The Notice of Disconnection's OID (RFC 4511 §4.4.1).
    public static let noticeOfDisconnectionName = "1.3.6.1.4.1.1466.20036"

    static let tag: UInt = 24

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            result.serializeComponents(into: &coder)
            if let name { coder.appendString(name, identifier: .context(10)) }
            if let value { coder.appendOctets(value, identifier: .context(11)) }
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "ExtendedResponse").makeIterator()
        result = try LDAPResult(components: &fields)
        name = nil
        value = nil
        while let node = fields.next() {
            switch node.identifier {
            case .context(10) where name == nil && value == nil:
                name = try BERField.string(of: node, .context(10), "responseName")
            case .context(11) where value == nil:
                value = Array(try BERField.octets(of: node, .context(11), "responseValue"))
            default:
                continue // unknown trailing elements are ignored (RFC 4511 §4)
            }
        }
    }
}
