/// Distinguished-name helpers (RFC 4514).
public enum LDAPDistinguishedName {
    /// Escapes a value for use as an attribute value inside a DN string (RFC 4514 §2.4), so a user
    /// name substituted into `uid=%u,ou=people,…` stays one value of one RDN: `"`, `+`, `,`, `;`,
    /// `<`, `>`, `=`, `\` get a backslash; a leading `#` or space and a trailing space get a
    /// backslash; NUL and other control characters become `\XX`. Other characters, non-ASCII
    /// included, are kept as UTF-8.
    public static func escapeValue(_ value: String) -> String {
        let bytes = Array(value.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        for (offset, byte) in bytes.enumerated() {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
                 UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "="), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case UInt8(ascii: "#") where offset == 0:
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case UInt8(ascii: " ") where offset == 0 || offset == bytes.count - 1:
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0x00...0x1F, 0x7F:
                let digits = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
            default:
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The attribute type and unescaped value of a DN's first RDN (`cn=operators,ou=groups,…` →
    /// `("cn", "operators")`), used to name groups listed by DN in a `memberOf`-style attribute.
    /// Nil for an empty DN, a multi-valued first RDN, a `#`-hex value or a malformed escape.
    public static func firstRDN(of dn: String) -> (attribute: String, value: String)? {
        let bytes = Array(dn.utf8)
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let attribute = String(decoding: bytes[..<equals], as: UTF8.self).trimmingASCIISpaces()
        guard !attribute.isEmpty, !attribute.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\\") }) else { return nil }
        var index = equals + 1
        guard index >= bytes.count || bytes[index] != UInt8(ascii: "#") else { return nil }
        var value: [UInt8] = []
        scan: while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: ";"):
                break scan
            case UInt8(ascii: "+"):
                return nil
            case UInt8(ascii: "\\"):
                guard index + 1 < bytes.count else { return nil }
                if index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                    value.append(high << 4 | low)
                    index += 3
                } else {
                    value.append(bytes[index + 1])
                    index += 2
                }
            default:
                value.append(byte)
                index += 1
            }
        }
        guard let text = String(validating: value, as: UTF8.self) else { return nil }
        return (attribute, text)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var slice = Substring(self)
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return String(slice)
    }
}
