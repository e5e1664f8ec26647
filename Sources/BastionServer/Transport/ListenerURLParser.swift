#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Strict parsing of listener URLs (`mqtt://HOST:PORT`, `mqtts://HOST:PORT`, `ws://HOST:PORT/PATH`,
/// `wss://HOST:PORT/PATH`; IPv6 in brackets; default ports 1883 / 8883 / 80 / 443; default WebSocket
/// path `/mqtt`) and the loopback test, as pure functions that `ListenerURL` can delegate to.
/// Refuses what a lenient split on `:` would misread: bare IPv6 (`mqtt://::1:1883`), user info,
/// query strings, paths on raw MQTT listeners, host names with invalid characters.
public enum ListenerURLParser {
    public struct Parsed: Sendable, Hashable {
        public var scheme: ListenerURL.Scheme
        /// Without brackets.
        public var host: String
        public var port: Int
        /// Set for ws/wss only.
        public var path: String?
    }

    public static let defaultWebSocketPath = "/mqtt"

    public static func parse(_ text: String) throws(ListenerURLError) -> Parsed {
        guard let separator = text.range(of: "://") else {
            throw ListenerURLError(text, "missing scheme; write mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH")
        }
        let schemeText = text[..<separator.lowerBound].lowercased()
        guard let scheme = ListenerURL.Scheme(rawValue: schemeText) else {
            throw ListenerURLError(text, "unknown scheme \"\(schemeText)\"; use mqtt, mqtts, ws or wss")
        }
        var rest = text[separator.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw ListenerURLError(text, "query strings and fragments are not allowed")
        }
        var pathPart: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            pathPart = rest[slash...]
            rest = rest[..<slash]
        }
        if rest.contains("@") {
            throw ListenerURLError(text, "user information is not allowed in a listener URL")
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw ListenerURLError(text, "unterminated IPv6 address; write [::1]:PORT")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw ListenerURLError(text, "expected :PORT after the IPv6 address")
                }
                portText = after.dropFirst()
            }
            guard isIPv6(String(host)) else {
                throw ListenerURLError(text, "\"\(host)\" is not an IPv6 address")
            }
        } else {
            if rest.filter({ $0 == ":" }).count > 1 {
                throw ListenerURLError(text, "IPv6 addresses must be written in brackets, e.g. mqtts://[::1]:8883")
            }
            if let colon = rest.firstIndex(of: ":") {
                host = rest[..<colon]
                portText = rest[rest.index(after: colon)...]
            } else {
                host = rest
            }
            guard !host.isEmpty else {
                throw ListenerURLError(text, "missing host; use 127.0.0.1 for local clients or 0.0.0.0 for all interfaces")
            }
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
            guard host.allSatisfy({ allowed.contains($0) }), !host.hasPrefix("."), !host.hasPrefix("-") else {
                throw ListenerURLError(text, "\"\(host)\" is not a valid host name or IPv4 address")
            }
        }

        var port = scheme.defaultPort
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let value = Int(portText),
                (0...65_535).contains(value)
            else {
                throw ListenerURLError(text, "port \"\(portText)\" is not a number between 0 and 65535")
            }
            port = value
        }

        var path: String?
        if scheme.isWebSocket {
            let p = pathPart.isEmpty ? defaultWebSocketPath : String(pathPart)
            if p.contains(where: { $0.isWhitespace || !$0.isASCII }) {
                throw ListenerURLError(text, "the WebSocket path must be plain ASCII without spaces")
            }
            path = p
        } else if !(pathPart.isEmpty || pathPart == "/") {
            throw ListenerURLError(text, "\(scheme.rawValue):// listeners take no path; did you mean ws:// or wss://?")
        }
        return Parsed(scheme: scheme, host: String(host), port: port, path: path)
    }

    /// True for `localhost`, `*.localhost`, `127.0.0.0/8`, `::1` and `::ffff:127.x.x.x`: only this
    /// machine can connect. `0.0.0.0` and `::` are not loopback.
    public static func isLoopback(host: String) -> Bool {
        let lower = host.lowercased()
        if lower == "localhost" || lower.hasSuffix(".localhost") { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { $0[0] == 127 }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { bytes in
                if bytes.prefix(15).allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
                let mapped = bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF
                return mapped && bytes[12] == 127
            }
        }
        return false
    }

    static func isIPv6(_ text: String) -> Bool {
        var v6 = in6_addr()
        return inet_pton(AF_INET6, text, &v6) == 1
    }
}

public struct ListenerURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var url: String
    public var reason: String

    public init(_ url: String, _ reason: String) {
        self.url = url
        self.reason = reason
    }

    public var description: String { "invalid listener URL \"\(url)\": \(reason)" }
}
