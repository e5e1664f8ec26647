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

    static func decide(uri: String, headers: HTTPHeaders, path: String) -> Decision {
        let requestPath = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        guard requestPath == path else {
            return .refuse(.notFound, reason: "no MQTT WebSocket at \(requestPath) (this listener serves \(path))")
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
