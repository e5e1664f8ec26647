import NIOCore
import NIOWebSocket

/// Turns a WebSocket into the byte stream the MQTT handler expects. Inbound, binary (and continuation)
/// frame payloads become `ByteBuffer`s — MQTT packets may span frames and frames may hold several
/// packets; a text frame is refused with close 1003, pings are answered, a close is echoed. Outbound,
/// `ByteBuffer` writes are gathered until flush and sent as one binary frame, so a burst of MQTT
/// packets costs one frame.
final class WebSocketMQTTAdapter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private var pending: ByteBuffer?
    private var pendingPromises: [EventLoopPromise<Void>] = []
    private var closeSent = false
    /// Called once with a reason when the adapter closes the connection because of what the peer sent.
    private let onRefusal: (String) -> Void

    init(onRefusal: @escaping (String) -> Void = { _ in }) {
        self.onRefusal = onRefusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closeSent else { return }
        // RFC 6455 §5.1: a server MUST close the connection on an unmasked client frame.
        guard frame.maskKey != nil else {
            refuse(context: context, code: .protocolError, reason: "unmasked WebSocket frame from client")
            return
        }
        switch frame.opcode {
        case .binary, .continuation:
            let payload = frame.unmaskedData
            if payload.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(payload))
            }
        case .text:
            refuse(context: context, code: .unacceptableData, reason: "text WebSocket frame (MQTT needs binary frames)")
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Answer with a plain normal closure: echoing the peer's code could echo one that must
            // never be sent (1005, 1006, 1015).
            sendClose(context: context, code: .normalClosure)
        default:
            refuse(context: context, code: .protocolError, reason: "unknown WebSocket opcode \(frame.opcode)")
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        if closeSent {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if var accumulated = pending {
            pending = nil  // keep the buffer uniquely referenced while appending
            accumulated.writeBuffer(&buffer)
            pending = accumulated
        } else {
            pending = buffer
        }
        if let promise { pendingPromises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, !closeSent, context.channel.isActive {
            writePending(context: context)
            closeSent = true
            context.writeAndFlush(wrapOutboundOut(Self.closeFrame(.normalClosure, allocator: context.channel.allocator)), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPending(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failPending(ChannelError.ioOnClosedChannel)
    }

    private func writePending(context: ChannelHandlerContext) {
        guard let payload = pending else { return }
        pending = nil
        let promises = pendingPromises
        pendingPromises = []
        var combined: EventLoopPromise<Void>?
        if !promises.isEmpty {
            let promise = context.eventLoop.makePromise(of: Void.self)
            for waiting in promises { promise.futureResult.cascade(to: waiting) }
            combined = promise
        }
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: payload)), promise: combined)
    }

    private func failPending(_ error: any Error) {
        pending = nil
        let promises = pendingPromises
        pendingPromises = []
        for promise in promises { promise.fail(error) }
    }

    private func refuse(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        onRefusal(reason)
        sendClose(context: context, code: code)
    }

    private func sendClose(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closeSent else { return }
        closeSent = true
        failPending(ChannelError.ioOnClosedChannel)
        let frame = Self.closeFrame(code, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    static func closeFrame(_ code: WebSocketErrorCode, allocator: ByteBufferAllocator) -> WebSocketFrame {
        var data = allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        return WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
    }
}
