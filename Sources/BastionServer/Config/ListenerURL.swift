/// A listener address as operators write it: `mqtt://HOST:PORT`, `mqtts://HOST:PORT`,
/// `ws://HOST:PORT/PATH`, `wss://HOST:PORT/PATH`; IPv6 hosts in brackets.
public struct ListenerURL: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable {
        case mqtt, mqtts, ws, wss

        public var defaultPort: Int {
            switch self {
            case .mqtt: 1883
            case .mqtts: 8883
            case .ws: 80
            case .wss: 443
            }
        }

        public var isTLS: Bool { self == .mqtts || self == .wss }
        public var isWebSocket: Bool { self == .ws || self == .wss }
    }

    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// WebSocket path (default /mqtt); "/" for raw MQTT.
    public var path: String

    public init(scheme: Scheme, host: String, port: Int, path: String? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path ?? (scheme.isWebSocket ? "/mqtt" : "/")
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws(ParseError) {
        guard let sep = text.range(of: "://") else {
            throw ParseError(description: "'\(text)' is not a listener URL; expected e.g. mqtt://127.0.0.1:1883 or wss://0.0.0.0:443/mqtt")
        }
        let schemeText = text[..<sep.lowerBound].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            throw ParseError(description: "unknown scheme '\(schemeText)' in '\(text)'; use mqtt, mqtts, ws or wss")
        }
        var rest = text[sep.upperBound...]
        var path: String?
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        if let path, !scheme.isWebSocket, path != "/" {
            throw ParseError(description: "'\(text)': only ws:// and wss:// listeners take a path")
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(description: "'\(text)': unterminated IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw ParseError(description: "'\(text)': unexpected '\(after)' after the address")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw ParseError(description: "'\(text)': missing host (use 127.0.0.1 or 0.0.0.0)") }
        var port = scheme.defaultPort
        if let portText {
            guard let value = Int(portText), (0...65535).contains(value) else {
                throw ParseError(description: "'\(text)': port must be a number from 0 to 65535")
            }
            port = value
        }
        self.init(scheme: scheme, host: String(host), port: port, path: path)
    }

    /// Loopback addresses: the only ones where anonymous access and plaintext are allowed by default.
    public var isLoopback: Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }

    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let pathPart = scheme.isWebSocket ? path : ""
        return "\(scheme.rawValue)://\(hostPart):\(port)\(pathPart)"
    }
}
