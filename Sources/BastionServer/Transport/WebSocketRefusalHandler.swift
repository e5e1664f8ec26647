import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Answers any HTTP request that did not become an MQTT WebSocket: 404 for another path, 400 for a
/// missing or non-MQTT subprotocol or a plain HTTP request, then closes. It is removed from the
/// pipeline when an upgrade succeeds.
final class WebSocketRefusalHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "bastion.websocket.refusal"

    private let path: String
    private let logger: Logger
    private var status: HTTPResponseStatus?
    private var reason = ""
    private var answered = false
    private let onRefusal: (HTTPResponseStatus, String) -> Void

    private let origins: WebSocketOrigins

    init(path: String, origins: WebSocketOrigins = .any, logger: Logger, onRefusal: @escaping (HTTPResponseStatus, String) -> Void = { _, _ in }) {
        self.path = path
        self.origins = origins
        self.logger = logger
        self.onRefusal = onRefusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let isUpgrade = head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            switch WebSocketHandshakePolicy.decide(uri: head.uri, headers: head.headers, path: path, origins: origins) {
            case .refuse(let status, let reason):
                self.status = status
                self.reason = reason
            case .accept:
                // The policy would accept, so the upgrade failed for another reason (not an upgrade
                // request, bad Sec-WebSocket-Key or version).
                self.status = .badRequest
                self.reason = isUpgrade ? "invalid WebSocket handshake" : "plain HTTP request; this endpoint only speaks MQTT over WebSocket"
            }
        case .body:
            break
        case .end:
            respond(context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Upgrade attempts that fail report here before the request is handed on; the request itself
        // is answered in channelRead.
        if error is NIOWebSocketUpgradeError { return }
        logger.notice("WebSocket request failed: \(error)")
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        let status = self.status ?? .badRequest
        logger.notice("WebSocket upgrade refused (\(status.code)): \(reason)")
        onRefusal(status, reason)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
