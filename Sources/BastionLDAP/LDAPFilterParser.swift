/// Why a filter string (RFC 4515) was refused, with the byte offset where parsing stopped.
public struct LDAPFilterSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var offset: Int

    public var description: String { "invalid LDAP filter at offset \(offset): \(reason)" }
}

extension LDAPFilter {
    /// Deepest nesting of and/or/not a filter string may have; keeps hostile input from exhausting the stack.
    public static let maximumNesting = 32
    /// Longest filter string accepted, in UTF-8 bytes.
    public static let maximumLength = 64 * 1024

    /// Parses the RFC 4515 string form, e.g. `(&(objectClass=person)(uid=alice))`.
    /// Values may use `\XX` escapes; `*`, `(`, `)`, `\` and NUL must be escaped to be literal.
    public init(parsing text: String) throws(LDAPFilterSyntaxError) {
        let bytes = Array(text.utf8)
        guard bytes.count <= Self.maximumLength else {
            throw LDAPFilterSyntaxError(reason: "longer than \(Self.maximumLength) bytes", offset: 0)
        }
        var parser = FilterParser(bytes: bytes)
        let filter = try parser.parseFilter(depth: 0)
        guard parser.index == bytes.count else {
            throw LDAPFilterSyntaxError(reason: "unexpected text after the filter", offset: parser.index)
        }
        self = filter
    }

    /// Escapes a value for use inside a filter string (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
    /// become `\2a`, `\28`, `\29`, `\5c`, `\00`. Substitute user input into filter templates only
    /// through this, so that a user name can never add filter structure or wildcards.
    public static func escape(_ value: String) -> String {
        escape(bytes: Array(value.utf8))
    }

    /// Byte form of `escape(_:)`; bytes that are not UTF-8 are escaped as `\XX` too.
    public static func escape(bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        let valid = String(validating: bytes, as: UTF8.self) != nil
        for byte in bytes {
            switch byte {
            case 0x00, 0x28, 0x29, 0x2A, 0x5C: out.append(contentsOf: Self.hexEscape(byte))
            case 0x80...0xFF where !valid: out.append(contentsOf: Self.hexEscape(byte))
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexEscape(_ byte: UInt8) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        return [0x5C, digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
    }
}

extension LDAPFilter: CustomStringConvertible {
    /// The RFC 4515 string form; parsing it yields this filter again.
    public var description: String {
        switch self {
        case .and(let filters): "(&" + filters.map(\.description).joined() + ")"
        case .or(let filters): "(|" + filters.map(\.description).joined() + ")"
        case .not(let filter): "(!" + filter.description + ")"
        case .equalityMatch(let attribute, let value): "(\(attribute)=\(Self.escape(bytes: value)))"
        case .greaterOrEqual(let attribute, let value): "(\(attribute)>=\(Self.escape(bytes: value)))"
        case .lessOrEqual(let attribute, let value): "(\(attribute)<=\(Self.escape(bytes: value)))"
        case .approxMatch(let attribute, let value): "(\(attribute)~=\(Self.escape(bytes: value)))"
        case .present(let attribute): "(\(attribute)=*)"
        case .substrings(let attribute, let initial, let any, let final):
            "(\(attribute)=" + (initial.map(Self.escape(bytes:)) ?? "") + "*"
                + any.map { Self.escape(bytes: $0) + "*" }.joined() + (final.map(Self.escape(bytes:)) ?? "") + ")"
        }
    }
}

/// Recursive-descent parser over the filter's UTF-8 bytes (RFC 4515 §3 grammar).
private struct FilterParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ reason: String) -> LDAPFilterSyntaxError {
        LDAPFilterSyntaxError(reason: reason, offset: index)
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(LDAPFilterSyntaxError) {
        guard current == byte else { throw fail("expected \(what)") }
        index += 1
    }

    mutating func parseFilter(depth: Int) throws(LDAPFilterSyntaxError) -> LDAPFilter {
        guard depth < LDAPFilter.maximumNesting else { throw fail("nested deeper than \(LDAPFilter.maximumNesting) levels") }
        try expect(UInt8(ascii: "("), "'('")
        let filter: LDAPFilter
        switch current {
        case UInt8(ascii: "&"):
            index += 1
            filter = .and(try parseList(depth: depth))
        case UInt8(ascii: "|"):
            index += 1
            filter = .or(try parseList(depth: depth))
        case UInt8(ascii: "!"):
            index += 1
            filter = .not(try parseFilter(depth: depth + 1))
        default:
            filter = try parseItem()
        }
        try expect(UInt8(ascii: ")"), "')'")
        return filter
    }

    private mutating func parseList(depth: Int) throws(LDAPFilterSyntaxError) -> [LDAPFilter] {
        var filters: [LDAPFilter] = []
        while current == UInt8(ascii: "(") {
            filters.append(try parseFilter(depth: depth + 1))
        }
        guard !filters.isEmpty else { throw fail("'&' and '|' need at least one filter") }
        return filters
    }

    private mutating func parseItem() throws(LDAPFilterSyntaxError) -> LDAPFilter {
        let attribute = try parseAttributeDescription()
        let kind: UInt8
        switch current {
        case UInt8(ascii: "="): kind = UInt8(ascii: "=")
        case UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "<"):
            kind = current!
            index += 1
            guard current == UInt8(ascii: "=") else { throw fail("expected '=' after '\(Character(Unicode.Scalar(kind)))'") }
        case UInt8(ascii: ":"): throw fail("extensible match filters are not supported")
        default: throw fail("expected a filter type ('=', '~=', '>=', '<=')")
        }
        index += 1
        // The value: pieces separated by unescaped '*' (only meaningful for '=').
        var pieces: [[UInt8]] = [[]]
        while let byte = current, byte != UInt8(ascii: ")") {
            switch byte {
            case UInt8(ascii: "*"):
                guard kind == UInt8(ascii: "=") else { throw fail("'*' must be escaped as \\2a in this filter type") }
                pieces.append([])
                index += 1
            case UInt8(ascii: "\\"):
                pieces[pieces.count - 1].append(try parseEscape())
            case 0x00, UInt8(ascii: "("):
                throw fail("NUL and '(' must be escaped as \\00 and \\28")
            default:
                pieces[pieces.count - 1].append(byte)
                index += 1
            }
        }
        switch kind {
        case UInt8(ascii: "~"): return .approxMatch(attribute: attribute, value: pieces[0])
        case UInt8(ascii: ">"): return .greaterOrEqual(attribute: attribute, value: pieces[0])
        case UInt8(ascii: "<"): return .lessOrEqual(attribute: attribute, value: pieces[0])
        default: break
        }
        if pieces.count == 1 { return .equalityMatch(attribute: attribute, value: pieces[0]) }
        if pieces.count == 2, pieces[0].isEmpty, pieces[1].isEmpty { return .present(attribute: attribute) }
        let middle = pieces.dropFirst().dropLast()
        guard !middle.contains(where: \.isEmpty) else { throw fail("'**' is not a valid substring filter") }
        return .substrings(
            attribute: attribute,
            initial: pieces[0].isEmpty ? nil : pieces[0],
            any: Array(middle),
            final: pieces[pieces.count - 1].isEmpty ? nil : pieces[pieces.count - 1]
        )
    }

    private mutating func parseEscape() throws(LDAPFilterSyntaxError) -> UInt8 {
        index += 1 // the backslash
        guard index + 1 < bytes.count, let high = Self.hexValue(bytes[index]), let low = Self.hexValue(bytes[index + 1]) else {
            throw fail("'\\' must be followed by two hex digits")
        }
        index += 2
        return high << 4 | low
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// attributedescription = attributetype options (RFC 4512 §2.5): a descriptor (letter, then
    /// letters, digits, '-') or a numeric OID, each option introduced by ';'.
    private mutating func parseAttributeDescription() throws(LDAPFilterSyntaxError) -> String {
        let start = index
        guard let first = current else { throw fail("expected an attribute description") }
        if Self.isDigit(first) {
            // numericoid = number 1*( DOT number ), no leading zeros.
            repeat {
                guard let byte = current, Self.isDigit(byte) else { throw fail("malformed numeric OID") }
                let numberStart = index
                while let byte = current, Self.isDigit(byte) { index += 1 }
                if bytes[numberStart] == UInt8(ascii: "0"), index - numberStart > 1 { throw fail("leading zero in numeric OID") }
                guard current == UInt8(ascii: ".") else { break }
                index += 1
            } while true
        } else {
            guard Self.isAlpha(first) else { throw fail("expected an attribute description") }
            while let byte = current, Self.isKeyChar(byte) { index += 1 }
        }
        while current == UInt8(ascii: ";") {
            index += 1
            let optionStart = index
            while let byte = current, Self.isKeyChar(byte) { index += 1 }
            guard index > optionStart else { throw fail("empty attribute option") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    private static func isAlpha(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }
    private static func isKeyChar(_ byte: UInt8) -> Bool { isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "-") }
}
