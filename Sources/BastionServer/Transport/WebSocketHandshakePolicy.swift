import NIOHTTP1

/// Whether an HTTP request may become an MQTT WebSocket (MQTT 5.0 §6, 3.1.1 §6): right path, and the
/// client offers the `mqtt` subprotocol (or `mqttv3.1`, which MQTT 3.1 clients send). The chosen
/// subprotocol is echoed in the 101 response. Pure: the upgrader and the refusal handler both ask it.
enum WebSocketHandshakePolicy {
    static let subprotocols = ["mqtt", "mqttv3.1"]

    enum Decision: Equatable {
        case accept(subprotocol: String)
        case refuse(HTTPResponseStatus, reason: String)
    }

    static func decide(uri: String, headers: HTTPHeaders, path: String, origins: WebSocketOrigins = .any) -> Decision {
        let requestPath = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        guard requestPath == path else {
            return .refuse(.notFound, reason: "no MQTT WebSocket at \(requestPath) (this listener serves \(path))")
        }
        // Browsers send Origin on every WebSocket request; other clients usually send none. A
        // page on any site could otherwise reach a listener its visitor's machine can reach.
        for origin in headers[canonicalForm: "origin"] where !origins.allows(String(origin)) {
            return .refuse(.forbidden, reason: "origin \(origin) is not allowed on this listener (see allowed_origins)")
        }
        let offered = headers[canonicalForm: "sec-websocket-protocol"].map { $0.lowercased() }
        guard !offered.isEmpty else {
            return .refuse(.badRequest, reason: "WebSocket request without the mqtt subprotocol")
        }
        for candidate in subprotocols where offered.contains(candidate) {
            return .accept(subprotocol: candidate)
        }
        return .refuse(
            .badRequest,
            reason: "WebSocket subprotocol \(offered.joined(separator: ", ")) is not MQTT (expected mqtt)"
        )
    }
}

/// `listeners[].allowed_origins`: which browser origins may open an MQTT WebSocket. Requests
/// without an Origin header (non-browser clients) are not affected.
public enum WebSocketOrigins: Sendable, Equatable {
    case any
    /// Serialised origins (`scheme://host[:port]`), lowercased; empty: no browser page at all.
    case only(Set<String>)

    public func allows(_ origin: String) -> Bool {
        switch self {
        case .any: true
        case .only(let allowed): allowed.contains(origin.lowercased())
        }
    }

    /// An origin as browsers serialise it: http or https, a host, an optional port, no path.
    static func isValid(_ origin: String) -> Bool {
        let lower = origin.lowercased()
        guard let rest = lower.hasPrefix("https://") ? lower.dropFirst(8) : lower.hasPrefix("http://") ? lower.dropFirst(7) : nil else {
            return false
        }
        return !rest.isEmpty && !rest.contains("/") && !rest.contains("?") && !rest.contains("#") && !rest.contains("@")
    }
}
