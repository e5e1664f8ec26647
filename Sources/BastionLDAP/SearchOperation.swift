import SwiftASN1

/// SearchRequest (RFC 4511 §4.5.1).
public struct LDAPSearchRequest: Sendable, Hashable {
    public enum Scope: Int, Sendable, Hashable {
        case baseObject = 0, singleLevel = 1, wholeSubtree = 2
    }

    public enum DerefAliases: Int, Sendable, Hashable {
        case never = 0, inSearching = 1, findingBaseObject = 2, always = 3
    }

    public var baseObject: String
    public var scope: Scope
    public var derefAliases: DerefAliases
    /// Most entries the server should return; 0 asks for no limit.
    public var sizeLimit: Int
    /// Seconds the server may spend; 0 asks for no limit.
    public var timeLimit: Int
    public var typesOnly: Bool
    public var filter: LDAPFilter
    /// Attributes to return; empty asks for all user attributes, `["1.1"]` for none.
    public var attributes: [String]

    public init(
        baseObject: String, scope: Scope = .wholeSubtree, derefAliases: DerefAliases = .never,
        sizeLimit: Int = 0, timeLimit: Int = 0, typesOnly: Bool = false,
        filter: LDAPFilter = .present(attribute: "objectClass"), attributes: [String] = []
    ) {
        self.baseObject = baseObject
        self.scope = scope
        self.derefAliases = derefAliases
        self.sizeLimit = sizeLimit
        self.timeLimit = timeLimit
        self.typesOnly = typesOnly
        self.filter = filter
        self.attributes = attributes
    }

    static let tag: UInt = 3

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            coder.appendString(baseObject)
            coder.appendInteger(scope.rawValue, identifier: .enumerated)
            coder.appendInteger(derefAliases.rawValue, identifier: .enumerated)
            coder.appendInteger(max(0, min(sizeLimit, Int(Int32.max))))
            coder.appendInteger(max(0, min(timeLimit, Int(Int32.max))))
            coder.appendBoolean(typesOnly)
            filter.serialize(into: &coder)
            coder.appendConstructedNode(identifier: .sequence) { coder in
                for attribute in attributes { coder.appendString(attribute) }
            }
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "SearchRequest").makeIterator()
        baseObject = try BERField.string(of: BERField.next(&fields, "baseObject"), "baseObject")
        scope = Scope(rawValue: try BERField.integer(of: BERField.next(&fields, "scope"), .enumerated, in: 0...2, "scope"))!
        derefAliases = DerefAliases(rawValue: try BERField.integer(of: BERField.next(&fields, "derefAliases"), .enumerated, in: 0...3, "derefAliases"))!
        sizeLimit = try BERField.integer(of: BERField.next(&fields, "sizeLimit"), .integer, in: 0...Int(Int32.max), "sizeLimit")
        timeLimit = try BERField.integer(of: BERField.next(&fields, "timeLimit"), .integer, in: 0...Int(Int32.max), "timeLimit")
        typesOnly = try BERField.boolean(of: BERField.next(&fields, "typesOnly"), "typesOnly")
        filter = try LDAPFilter(berNode: BERField.next(&fields, "filter"))
        attributes = try BERField.children(of: BERField.next(&fields, "attributes"), .sequence, "attributes").map {
            try BERField.string(of: $0, "attribute selector")
        }
    }
}

/// One attribute of an entry: its description as the server spelled it, and its values as octets.
public struct LDAPAttribute: Sendable, Hashable {
    public var type: String
    public var values: [[UInt8]]

    public init(type: String, values: [[UInt8]]) {
        self.type = type
        self.values = values
    }

    public init(type: String, stringValues: [String]) {
        self.init(type: type, values: stringValues.map { Array($0.utf8) })
    }
}

/// SearchResultEntry (RFC 4511 §4.5.2).
public struct LDAPEntry: Sendable, Hashable {
    public var dn: String
    public var attributes: [LDAPAttribute]

    public init(dn: String, attributes: [LDAPAttribute] = []) {
        self.dn = dn
        self.attributes = attributes
    }

    /// Values of an attribute, matched case-insensitively (attribute descriptions are, RFC 4512 §2.5).
    public func values(of type: String) -> [[UInt8]] {
        let wanted = type.lowercasedASCII()
        return attributes.filter { $0.type.lowercasedASCII() == wanted }.flatMap(\.values)
    }

    /// Values of an attribute that are valid UTF-8; others are left out.
    public func stringValues(of type: String) -> [String] {
        values(of: type).compactMap { String(validating: $0, as: UTF8.self) }
    }

    static let tag: UInt = 4

    func serialize(into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(Self.tag)) { coder in
            coder.appendString(dn)
            coder.appendConstructedNode(identifier: .sequence) { coder in
                for attribute in attributes {
                    coder.appendConstructedNode(identifier: .sequence) { coder in
                        coder.appendString(attribute.type)
                        coder.appendConstructedNode(identifier: .set) { coder in
                            for value in attribute.values { coder.appendOctets(value) }
                        }
                    }
                }
            }
        }
    }

    init(berNode node: ASN1Node) throws {
        var fields = try BERField.children(of: node, .application(Self.tag), "SearchResultEntry").makeIterator()
        dn = try BERField.string(of: BERField.next(&fields, "objectName"), "objectName")
        attributes = try BERField.children(of: BERField.next(&fields, "attributes"), .sequence, "attributes").map { node in
            var parts = try BERField.children(of: node, .sequence, "PartialAttribute").makeIterator()
            let type = try BERField.string(of: BERField.next(&parts, "attribute type"), "attribute type")
            let values = try BERField.children(of: BERField.next(&parts, "attribute values"), .set, "attribute values").map {
                Array(try BERField.octets(of: $0, .octetString, "attribute value"))
            }
            return LDAPAttribute(type: type, values: values)
        }
    }
}

/// SearchResultReference (RFC 4511 §4.5.3): continuation URIs. They are parsed and skipped.
enum SearchResultReference {
    static let tag: UInt = 19

    static func serialize(_ uris: [String], into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .application(tag)) { coder in
            for uri in uris { coder.appendString(uri) }
        }
    }

    static func parse(_ node: ASN1Node) throws -> [String] {
        let uris = try BERField.children(of: node, .application(tag), "SearchResultReference").map {
            try BERField.string(of: $0, "reference URI")
        }
        guard !uris.isEmpty else { throw BERShapeError("SearchResultReference: no URIs") }
        return uris
    }
}

extension String {
    func lowercasedASCII() -> String {
        String(decoding: utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
