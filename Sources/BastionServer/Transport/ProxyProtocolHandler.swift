import Logging
import NIOCore

/// First handler on a listener with `proxy_protocol`: reads the PROXY header before any other
/// byte (TLS included) and hands the client's real address to `proceed`, which sets up the rest
/// of the pipeline; then forwards what followed the header and removes itself.
///
/// - From a trusted source (the proxy) a header is required; a stream without one is closed.
/// - From any other source a header is refused (closed before any MQTT byte is read): nobody
///   but the proxy may claim another address. Such clients may still connect directly without one.
/// - A malformed, oversized or slow header closes the connection.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum Outcome {
        /// Proceed as if the client were at this address (nil: the socket's own address).
        case proceed(SocketAddress?)
        case refuse(String)
    }

    private let trustedSource: Bool
    private let logger: Logger
    private let timeout: TimeAmount
    private let proceed: (any Channel, SocketAddress?) -> EventLoopFuture<Void>
    private let onRefusal: (String) -> Void
    private var buffer: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var done = false

    init(trustedSource: Bool, timeout: TimeAmount, logger: Logger, onRefusal: @escaping (String) -> Void,
         proceed: @escaping (any Channel, SocketAddress?) -> EventLoopFuture<Void>) {
        self.trustedSource = trustedSource
        self.timeout = timeout
        self.logger = logger
        self.onRefusal = onRefusal
        self.proceed = proceed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: timeout) { [self] in
            refuse(context: loopBound.value, "no PROXY header in time")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        if buffer == nil { buffer = bytes } else { buffer!.writeBuffer(&bytes) }
        guard let first = buffer!.getInteger(at: buffer!.readerIndex, as: UInt8.self) else { return }
        guard ProxyHeader.mayStart(with: first) else {
            guard !trustedSource else { return refuse(context: context, "connection from the proxy without a PROXY header") }
            return finish(context: context, .proceed(nil))
        }
        guard trustedSource else { return refuse(context: context, "PROXY header from an untrusted source") }
        do {
            guard let header = try ProxyHeaderParser.parse(&buffer!) else { return }
            switch header {
            case .local: finish(context: context, .proceed(nil))
            case .proxied(let address): finish(context: context, .proceed(address))
            }
        } catch {
            refuse(context: context, error.description)
        }
    }

    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        logger.notice("connection closed before MQTT: \(reason)")
        onRefusal(reason)
        buffer = nil
        context.close(promise: nil)
    }

    private func finish(context: ChannelHandlerContext, _ outcome: Outcome) {
        guard case .proceed(let address) = outcome, !done else { return }
        done = true
        deadline?.cancel()
        let rest = buffer
        buffer = nil
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        proceed(context.channel, address).assumeIsolated().whenComplete { result in
            let context = loopBound.value
            guard case .success = result else { return context.close(promise: nil) }
            if let rest, rest.readableBytes > 0 { context.fireChannelRead(NIOAny(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
