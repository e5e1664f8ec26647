import NIOCore

/// One connection attempt and, once the handshake succeeds, the connection it became. Handlers
/// carry their attempt so that ops from a channel the client has already given up on are ignored.
final class ConnectionAttempt {
    let server: NATSServerURL
    let promise: EventLoopPromise<Void>
    var channel: (any Channel)?
    var phase = Phase.awaitingInfo
    var timeout: Scheduled<Void>?
    /// Why the attempt failed or the connection ended, when known before the channel closed.
    var failure: (any Error)?

    enum Phase { case awaitingInfo, awaitingPong, connected }

    init(server: NATSServerURL, promise: EventLoopPromise<Void>) {
        self.server = server
        self.promise = promise
    }
}

/// The only code between the channel and `ConnectionCore`: it hands every decoded op, error and
/// state change to the core, which runs on the same event loop.
final class NATSChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ServerOp

    private let core: ConnectionCore
    private let attempt: ConnectionAttempt

    init(core: ConnectionCore, attempt: ConnectionAttempt) {
        self.core = core
        self.attempt = attempt
    }

    func channelActive(context: ChannelHandlerContext) {
        attempt.channel = context.channel
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.received(unwrapInboundIn(data), on: attempt)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        core.writabilityChanged(context.channel.isWritable, on: attempt)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if attempt.failure == nil {
            attempt.failure = (error as? NATSProtocolError).map { NATSError.protocolError($0) } ?? error
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.channelClosed(attempt)
        context.fireChannelInactive()
    }
}
