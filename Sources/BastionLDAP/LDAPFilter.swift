import SwiftASN1

/// A search filter (RFC 4511 §4.5.1.7). Values are octets: an escaped filter string can carry any
/// byte, and attribute values need not be UTF-8. Extensible matches are not supported.
public indirect enum LDAPFilter: Sendable, Hashable {
    case and([LDAPFilter])
    case or([LDAPFilter])
    case not(LDAPFilter)
    case equalityMatch(attribute: String, value: [UInt8])
    case substrings(attribute: String, initial: [UInt8]?, any: [[UInt8]], final: [UInt8]?)
    case greaterOrEqual(attribute: String, value: [UInt8])
    case lessOrEqual(attribute: String, value: [UInt8])
    case present(attribute: String)
    case approxMatch(attribute: String, value: [UInt8])

    public static func equality(_ attribute: String, _ value: String) -> LDAPFilter {
        .equalityMatch(attribute: attribute, value: Array(value.utf8))
    }
}

extension LDAPFilter {
    private enum Tag {
        static let and: UInt = 0, or: UInt = 1, not: UInt = 2, equality: UInt = 3, substrings: UInt = 4
        static let greaterOrEqual: UInt = 5, lessOrEqual: UInt = 6, present: UInt = 7, approx: UInt = 8
    }

    func serialize(into coder: inout DER.Serializer) {
        switch self {
        case .and(let filters), .or(let filters):
            let tag = if case .and = self { Tag.and } else { Tag.or }
            coder.appendConstructedNode(identifier: .context(tag)) { coder in
                for filter in filters { filter.serialize(into: &coder) }
            }
        case .not(let filter):
            // `not` holds a CHOICE, which cannot be implicitly tagged: the tag wraps it.
            coder.appendConstructedNode(identifier: .context(Tag.not)) { filter.serialize(into: &$0) }
        case .equalityMatch(let attribute, let value):
            Self.serializeAssertion(Tag.equality, attribute, value, into: &coder)
        case .greaterOrEqual(let attribute, let value):
            Self.serializeAssertion(Tag.greaterOrEqual, attribute, value, into: &coder)
        case .lessOrEqual(let attribute, let value):
            Self.serializeAssertion(Tag.lessOrEqual, attribute, value, into: &coder)
        case .approxMatch(let attribute, let value):
            Self.serializeAssertion(Tag.approx, attribute, value, into: &coder)
        case .present(let attribute):
            coder.appendString(attribute, identifier: .context(Tag.present))
        case .substrings(let attribute, let initial, let any, let final):
            coder.appendConstructedNode(identifier: .context(Tag.substrings)) { coder in
                coder.appendString(attribute)
                coder.appendConstructedNode(identifier: .sequence) { coder in
                    if let initial { coder.appendOctets(initial, identifier: .context(0)) }
                    for value in any { coder.appendOctets(value, identifier: .context(1)) }
                    if let final { coder.appendOctets(final, identifier: .context(2)) }
                }
            }
        }
    }

    private static func serializeAssertion(_ tag: UInt, _ attribute: String, _ value: [UInt8], into coder: inout DER.Serializer) {
        coder.appendConstructedNode(identifier: .context(tag)) { coder in
            coder.appendString(attribute)
            coder.appendOctets(value)
        }
    }

    /// Nesting is bounded by swift-asn1's parser depth limit, so this recursion is too.
    init(berNode node: ASN1Node) throws {
        let identifier = node.identifier
        guard identifier.tagClass == .contextSpecific else {
            throw BERShapeError("filter: unexpected tag \(identifier)")
        }
        switch identifier.tagNumber {
        case Tag.and, Tag.or:
            let filters = try BERField.children(of: node, identifier, "filter set").map(LDAPFilter.init(berNode:))
            guard !filters.isEmpty else { throw BERShapeError("filter: empty and/or set") }
            self = identifier.tagNumber == Tag.and ? .and(filters) : .or(filters)
        case Tag.not:
            var children = try BERField.children(of: node, identifier, "not filter").makeIterator()
            let inner = try LDAPFilter(berNode: BERField.next(&children, "negated filter"))
            guard children.next() == nil else { throw BERShapeError("filter: not holds more than one filter") }
            self = .not(inner)
        case Tag.equality, Tag.greaterOrEqual, Tag.lessOrEqual, Tag.approx:
            var children = try BERField.children(of: node, identifier, "attribute value assertion").makeIterator()
            let attribute = try BERField.string(of: BERField.next(&children, "attributeDesc"), "attributeDesc")
            let value = Array(try BERField.octets(of: BERField.next(&children, "assertionValue"), .octetString, "assertionValue"))
            switch identifier.tagNumber {
            case Tag.equality: self = .equalityMatch(attribute: attribute, value: value)
            case Tag.greaterOrEqual: self = .greaterOrEqual(attribute: attribute, value: value)
            case Tag.lessOrEqual: self = .lessOrEqual(attribute: attribute, value: value)
            default: self = .approxMatch(attribute: attribute, value: value)
            }
        case Tag.present:
            self = .present(attribute: try BERField.string(of: node, identifier, "present attribute"))
        case Tag.substrings:
            var children = try BERField.children(of: node, identifier, "substring filter").makeIterator()
            let attribute = try BERField.string(of: BERField.next(&children, "substring type"), "substring type")
            var initial: [UInt8]?, any: [[UInt8]] = [], final: [UInt8]?
            var position = 0 // initial, then any, then final: RFC 4511 orders them.
            for part in try BERField.children(of: BERField.next(&children, "substrings"), .sequence, "substrings") {
                let number = part.identifier.tagNumber
                guard part.identifier.tagClass == .contextSpecific, number <= 2 else {
                    throw BERShapeError("substring: unexpected tag \(part.identifier)")
                }
                let value = Array(try BERField.octets(of: part, part.identifier, "substring"))
                switch number {
                case 0 where position == 0 && initial == nil: initial = value
                case 1 where position <= 1 && final == nil: any.append(value); position = 1
                case 2 where final == nil: final = value; position = 2
                default: throw BERShapeError("substring: parts out of order")
                }
            }
            guard initial != nil || !any.isEmpty || final != nil else { throw BERShapeError("substring: no parts") }
            self = .substrings(attribute: attribute, initial: initial, any: any, final: final)
        default:
            throw BERShapeError("filter: unsupported choice [\(identifier.tagNumber)]")
        }
    }
}
