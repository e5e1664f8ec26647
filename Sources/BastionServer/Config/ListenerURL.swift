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
        do throws(ListenerURLError) {
            let parsed = try ListenerURLParser.parse(text)
            self.init(scheme: parsed.scheme, host: parsed.host, port: parsed.port, path: parsed.path)
        } catch {
            throw ParseError(description: error.description)
        }
    }

    /// Loopback addresses: the only ones where anonymous access and plaintext are allowed by default.
    public var isLoopback: Bool { ListenerURLParser.isLoopback(host: host) }

    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let pathPart = scheme.isWebSocket ? path : ""
        return "\(scheme.rawValue)://\(hostPart):\(port)\(pathPart)"
    }
}
