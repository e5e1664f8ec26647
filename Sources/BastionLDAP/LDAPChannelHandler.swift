import Logging
import NIOCore
import NIOSSL
import Synchronization

/// An operation on its way to the channel handler, with the promise its answer completes.
struct LDAPRequest: Sendable {
    var operation: LDAPOperation
    /// For StartTLS: the TLS context and the name to verify once the server agrees.
    var tls: TLSSetup?
    var timeout: Duration
    var promise: EventLoopPromise<LDAPOperationResponse>

    struct TLSSetup: Sendable {
        var context: NIOSSLContext
        var serverHostname: String?
    }
}

/// Why a connection closed, shared with `LDAPConnection` so that calls after the close report
/// the real reason (a TLS failure, a timeout) instead of "channel closed".
final class LDAPCloseReason: Sendable {
    private let reason = Mutex<LDAPError?>(nil)

    var value: LDAPError? { reason.withLock { $0 } }

    func record(_ error: LDAPError) {
        reason.withLock { if $0 == nil { $0 = error } }
    }
}

/// The only code of a connection doing IO: frames inbound bytes into messages, runs the state
/// machine's actions, owns the operation's promise and timer.
final class LDAPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = LDAPRequest
    typealias OutboundOut = ByteBuffer

    private var machine = LDAPConnectionStateMachine()
    private var inbound: ByteBuffer?
    private var promise: EventLoopPromise<LDAPOperationResponse>?
    private var timer: Scheduled<Void>?
    private var tls: LDAPRequest.TLSSetup?
    private let maximumMessageSize: Int
    private let closeReason: LDAPCloseReason
    private let logger: Logger

    init(maximumMessageSize: Int, closeReason: LDAPCloseReason, logger: Logger) {
        self.maximumMessageSize = maximumMessageSize
        self.closeReason = closeReason
        self.logger = logger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        // The caller waits on the request's promise, not on the write: the write is reported
        // done here so that only a request that never reached this handler fails the write.
        writePromise?.succeed()
        switch machine.send(request.operation) {
        case .fail(let error):
            request.promise.fail(error)
        case .write(let message):
            promise = request.promise
            tls = request.tls
            startTimer(context: context, messageID: message.messageID, after: request.timeout)
            logger.trace("LDAP send", metadata: ["op": "\(message.protocolOp.name)", "id": "\(message.messageID)"])
            context.writeAndFlush(wrapOutboundOut(encode(message, allocator: context.channel.allocator)), promise: nil)
        case .writeAndClose(let message):
            closeReason.record(.connectionClosed("unbound"))
            context.writeAndFlush(wrapOutboundOut(encode(message, allocator: context.channel.allocator)), promise: nil)
            context.close(promise: nil)
            request.promise.succeed(.unbound)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound!.writeBuffer(&bytes)
        }
        while var buffer = inbound {
            let before = buffer.readableBytes
            let message: LDAPMessage?
            do {
                message = try LDAPMessageDecoder.decode(bytes: &buffer, maximumMessageSize: maximumMessageSize)
            } catch {
                inbound = nil
                run(machine.errorCaught(.protocolError("\(error)")), context: context)
                return
            }
            guard let message else {
                buffer.discardReadBytes()
                inbound = buffer
                return
            }
            inbound = buffer
            let action = machine.received(message, size: before - buffer.readableBytes, bytesAfter: buffer.readableBytes)
            guard run(action, context: context) else { return }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded(context: context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The pipeline is torn down: nothing may stay waiting.
        connectionEnded(context: context)
    }

    private func connectionEnded(context: ChannelHandlerContext) {
        // A close the client asked for (LDAPConnection.close) is reported as such.
        if let reason = closeReason.value {
            run(machine.errorCaught(reason), context: context)
        } else {
            run(machine.channelInactive(), context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(machine.errorCaught(Self.classify(error)), context: context)
    }

    /// Runs a receive action; returns whether to keep decoding.
    @discardableResult
    private func run(_ action: LDAPConnectionStateMachine.ReceiveAction, context: ChannelHandlerContext) -> Bool {
        switch action {
        case .none:
            return true
        case .succeed(let response):
            complete(.success(response))
            return true
        case .fail(let error):
            complete(.failure(error))
            return true
        case .installTLS:
            guard let setup = tls else {
                run(machine.tlsSetupFailed(.tlsFailure("no TLS configuration for StartTLS")), context: context)
                return false
            }
            do {
                let handler = try NIOSSLClientHandler(context: setup.context, serverHostname: setup.serverHostname)
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
            } catch {
                run(machine.tlsSetupFailed(.tlsFailure("\(error)")), context: context)
                return false
            }
            complete(.success(.tlsStarted))
            return false
        case .failAndClose(let error):
            run(LDAPConnectionStateMachine.CloseAction.failAndClose(error), context: context)
            return false
        }
    }

    private func run(_ action: LDAPConnectionStateMachine.CloseAction, context: ChannelHandlerContext) {
        guard case .failAndClose(let error) = action else { return }
        logger.debug("LDAP connection closing", metadata: ["reason": "\(error)"])
        closeReason.record(error)
        inbound = nil
        complete(.failure(error))
        context.close(promise: nil)
    }

    private func complete(_ result: Result<LDAPOperationResponse, LDAPError>) {
        timer?.cancel()
        timer = nil
        tls = nil
        guard let promise else { return }
        self.promise = nil
        promise.completeWith(result.mapError { $0 as any Error })
    }

    private func startTimer(context: ChannelHandlerContext, messageID: Int32, after timeout: Duration) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            run(machine.timedOut(messageID: messageID, after: timeout), context: context)
        }
    }

    private func encode(_ message: LDAPMessage, allocator: ByteBufferAllocator) -> ByteBuffer {
        let bytes = message.serializedBytes
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    /// The one place channel errors become `LDAPError`s.
    static func classify(_ error: any Error) -> LDAPError {
        switch error {
        case let error as LDAPError: error
        case let error as LDAPDecodeError: .protocolError(error.description)
        case let error as NIOSSLError: .tlsFailure("\(error)")
        case let error as NIOSSLExtraError: .tlsFailure("\(error)")
        case let error as BoringSSLError: .tlsFailure("\(error)")
        default: .connectionClosed("\(error)")
        }
    }
}
