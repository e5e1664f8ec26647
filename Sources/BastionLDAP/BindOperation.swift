import SwiftASN1

/// BindRequest with simple authentication (RFC 4511 §4.2). SASL is not supported.
public struct LDAPBindRequest: Sendable, Hashable, CustomStringConvertible {
    public var version: Int
    public var name: String
    public var password: [UInt8]

    public init(version: Int = 3, name: String, password: [UInt8]) {
        self.version = version
        self.name = name
        self.password = password
    }

    /// Never prints the password.
    public var description: String { "BindRequest(version: \(version), name: \(name), password: <\(password.count) bytes>)" }

    static let tag: UInt = 0

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            coder.appendInteger(version)
            coder.appendString(name)
            coder.appendOctets(password, identifier: .context(0))
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "BindRequest").makeIterator()
        version = try BERField.integer(of: BERField.next(&fields, "version"), .integer, in: 1...127, "version")
        name = try BERField.string(of: BERField.next(&fields, "name"), "name")
        let authentication = try BERField.next(&fields, "authentication")
        guard authentication.identifier == .context(0) else {
            throw BERShapeError("BindRequest: only simple authentication is supported")
        }
        password = Array(try BERField.octets(of: authentication, .context(0), "simple password"))
    }
}

/// BindResponse (RFC 4511 §4.2.2).
public struct LDAPBindResponse: Sendable, Hashable {
    public var result: LDAPResult
    public var serverSaslCredentials: [UInt8]?

    public init(result: LDAPResult, serverSaslCredentials: [UInt8]? = nil) {
        self.result = result
        self.serverSaslCredentials = serverSaslCredentials
    }

    static let tag: UInt = 1

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            result.serializeComponents(into: &coder)
            if let serverSaslCredentials { coder.appendOctets(serverSaslCredentials, identifier: .context(7)) }
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "BindResponse").makeIterator()
        result = try LDAPResult(components: &fields)
        serverSaslCredentials = nil
        if let node = fields.next(), node.identifier == .context(7) {
            serverSaslCredentials = Array(try BERField.octets(of: node, .context(7), "serverSaslCreds"))
        }
    }
}
