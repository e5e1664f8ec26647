import NIOCore

/// Where a directory server listens: `ldap://host[:389]` or `ldaps://host[:636]`, IPv6 literals
/// in brackets (`ldap://[::1]:389`). A path (base DN, filter) or user info is refused: the
/// configuration names those separately.
public struct LDAPURL: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        case ldap, ldaps

        public var defaultPort: Int { self == .ldap ? 389 : 636 }
    }

    public var scheme: Scheme
    /// Host name or IP address, without brackets.
    public var host: String
    public var port: Int

    public init(scheme: Scheme, host: String, port: Int? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port ?? scheme.defaultPort
    }

    public init(parsing text: String) throws(LDAPError) {
        func invalid(_ why: String) -> LDAPError { .invalidURL("\(text): \(why)") }
        guard let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") else {
            throw invalid("expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
        }
        guard let scheme = Scheme(rawValue: String(text[..<colon]).lowercasedASCII()) else {
            throw invalid("scheme must be ldap or ldaps")
        }
        var rest = text[colon...].dropFirst(3)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw invalid("a path, base DN or filter is not supported in the URL")
        }
        guard !rest.contains("@") else { throw invalid("user information is not supported in the URL") }
        let host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unterminated IPv6 literal") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 literal") }
                portText = after.dropFirst()
            }
            guard (try? SocketAddress(ipAddress: String(host), port: 0))?.protocol == .inet6 else {
                throw invalid("not an IPv6 address in brackets")
            }
        } else {
            if let colon = rest.firstIndex(of: ":") {
                host = rest[..<colon]
                portText = rest[rest.index(after: colon)...]
            } else {
                host = rest
            }
            guard !host.isEmpty, host.utf8.allSatisfy({ Self.isHostNameByte($0) }) else {
                throw invalid("host must be a name or an IP address")
            }
        }
        guard !host.isEmpty else { throw invalid("missing host") }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw invalid("port must be 1-65535")
            }
            port = value
        }
        self.init(scheme: scheme, host: String(host), port: port)
    }

    /// Whether the host is a loopback address (127.0.0.0/8, ::1) or `localhost`.
    public var isLoopback: Bool {
        if host.lowercasedASCII() == "localhost" { return true }
        guard let address = try? SocketAddress(ipAddress: host, port: 0), let normalized = address.ipAddress else { return false }
        switch address.protocol {
        case .inet: return normalized.hasPrefix("127.")
        case .inet6: return normalized == "::1" || normalized.lowercasedASCII().hasPrefix("::ffff:127.")
        default: return false
        }
    }

    /// Whether the host is an IP literal rather than a name (names go into TLS SNI, IPs do not).
    public var hostIsIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme.rawValue)://\(shownHost):\(port)"
    }

    private static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}
