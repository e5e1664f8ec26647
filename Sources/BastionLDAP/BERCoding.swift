import SwiftASN1

// Reading and writing the few BER shapes LDAP uses (RFC 4511 §5.1), on top of swift-asn1's node
// tree. LDAP's module uses IMPLICIT tags, so most fields carry an APPLICATION or CONTEXT tag in
// place of their universal one.

extension ASN1Identifier {
    static func application(_ number: UInt) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: number, tagClass: .application)
    }

    static func context(_ number: UInt) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific)
    }
}

/// Thrown while walking a parsed node tree; `LDAPMessageDecoder` turns it into `LDAPDecodeError`.
struct BERShapeError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

enum BERField {
    /// The children of a constructed node with the expected tag.
    static func children(of node: ASN1Node, _ identifier: ASN1Identifier, _ what: String) throws -> ASN1NodeCollection {
        guard node.identifier == identifier else {
            throw BERShapeError("\(what): expected tag \(identifier), found \(node.identifier)")
        }
        guard case .constructed(let nodes) = node.content else {
            throw BERShapeError("\(what): expected a constructed encoding")
        }
        try refuseIndefiniteLength(node, what)
        return nodes
    }

    /// The content octets of a primitive node with the expected tag. RFC 4511 §5.1 allows only the
    /// primitive form of OCTET STRING, so a constructed (segmented) string is refused.
    static func octets(of node: ASN1Node, _ identifier: ASN1Identifier, _ what: String) throws -> ArraySlice<UInt8> {
        guard node.identifier == identifier else {
            throw BERShapeError("\(what): expected tag \(identifier), found \(node.identifier)")
        }
        guard case .primitive(let bytes) = node.content else {
            throw BERShapeError("\(what): expected a primitive encoding")
        }
        return bytes
    }

    /// LDAPString and LDAPDN are UTF-8 (RFC 4511 §4.1.2); anything else is refused rather than repaired.
    static func string(of node: ASN1Node, _ what: String) throws -> String {
        try string(of: node, .octetString, what)
    }

    static func string(of node: ASN1Node, _ identifier: ASN1Identifier, _ what: String) throws -> String {
        let bytes = try octets(of: node, identifier, what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw BERShapeError("\(what): not valid UTF-8")
        }
        return text
    }

    /// An INTEGER or ENUMERATED that must lie in `range`.
    static func integer(of node: ASN1Node, _ identifier: ASN1Identifier, in range: ClosedRange<Int>, _ what: String) throws -> Int {
        let bytes = try octets(of: node, identifier, what)
        guard let first = bytes.first else { throw BERShapeError("\(what): empty integer") }
        // Leading sign octets beyond the first carry no value; more than 8 significant octets cannot fit.
        var significant = bytes[...]
        while significant.count > 1,
              let lead = significant.first, let next = significant.dropFirst().first,
              (lead == 0x00 && next & 0x80 == 0) || (lead == 0xFF && next & 0x80 != 0) {
            significant = significant.dropFirst()
        }
        guard significant.count <= 8 else { throw BERShapeError("\(what): integer out of range") }
        var value: Int = first & 0x80 != 0 ? -1 : 0
        for byte in significant { value = (value << 8) | Int(byte) }
        guard range.contains(value) else { throw BERShapeError("\(what): \(value) out of range \(range)") }
        return value
    }

    static func boolean(of node: ASN1Node, _ what: String) throws -> Bool {
        let bytes = try octets(of: node, .boolean, what)
        guard bytes.count == 1, let byte = bytes.first else { throw BERShapeError("\(what): BOOLEAN must be one octet") }
        return byte != 0
    }

    static func next(_ iterator: inout ASN1NodeCollection.Iterator, _ what: String) throws -> ASN1Node {
        guard let node = iterator.next() else { throw BERShapeError("missing \(what)") }
        return node
    }

    /// RFC 4511 §5.1: only the definite form of length is used. swift-asn1's BER mode accepts the
    /// indefinite form, so each constructed node we read is checked. Primitive nodes cannot be
    /// indefinite (swift-asn1 refuses that).
    private static func refuseIndefiniteLength(_ node: ASN1Node, _ what: String) throws {
        let encoded = node.encodedBytes
        var identifierLength = 1
        if node.identifier.tagNumber >= 0x1F {
            var number = node.identifier.tagNumber
            repeat {
                identifierLength += 1
                number >>= 7
            } while number > 0
        }
        let lengthIndex = encoded.index(encoded.startIndex, offsetBy: identifierLength, limitedBy: encoded.endIndex) ?? encoded.endIndex
        if lengthIndex < encoded.endIndex, encoded[lengthIndex] == 0x80 {
            throw BERShapeError("\(what): indefinite length")
        }
    }
}

extension DER.Serializer {
    mutating func appendOctets(_ bytes: some Sequence<UInt8>, identifier: ASN1Identifier = .octetString) {
        appendPrimitiveNode(identifier: identifier) { $0.append(contentsOf: bytes) }
    }

    mutating func appendString(_ text: String, identifier: ASN1Identifier = .octetString) {
        appendOctets(text.utf8, identifier: identifier)
    }

    /// Minimal two's-complement content octets (X.690 §8.3).
    mutating func appendInteger(_ value: Int, identifier: ASN1Identifier = .integer) {
        appendPrimitiveNode(identifier: identifier) { bytes in
            var octets: [UInt8] = []
            var rest = value
            repeat {
                octets.append(UInt8(truncatingIfNeeded: rest))
                rest >>= 8
            } while !(rest == 0 && octets.last! & 0x80 == 0) && !(rest == -1 && octets.last! & 0x80 != 0)
            bytes.append(contentsOf: octets.reversed())
        }
    }

    mutating func appendBoolean(_ value: Bool) {
        appendPrimitiveNode(identifier: .boolean) { $0.append(value ? 0xFF : 0x00) }
    }
}
