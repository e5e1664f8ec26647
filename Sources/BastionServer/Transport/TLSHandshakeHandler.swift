import BastionSecurity
import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import X509

/// Per-connection facts gathered during the TLS handshake. Confined to the channel's event loop.
final class TLSConnectionState {
    var rejection: ClientCertificateRejection?
    var clientCertificate: ClientCertificateInfo?
    var cipherSuite: UInt16?
}

/// Client certificate verification for NIOSSL: swift-certificates' `Verifier` (through
/// `ClientCertificateVerifier`) replaces BoringSSL's checks so that EKU and CRLs are enforced and the
/// reason for a refusal is known.
enum TLSClientVerification {
    static func callback(
        verifier: ClientCertificateVerifier,
        state: TLSConnectionState,
        intermediates: IntermediateCertificateCache,
        clock: @escaping @Sendable () -> Date
    ) -> NIOSSLCustomVerificationCallbackWithMetadata {
        { certificates, promise in
            let presented: [Certificate]
            do {
                presented = try certificates.map { try CertificateDER.parse($0.toDERBytes()) }
            } catch {
                state.rejection = .malformed("\(error)")
                promise.succeed(.failed)
                return
            }
            let loop = promise.futureResult.eventLoop
            loop.makeFutureWithTask {
                await verifier.verifyChain(presented: presented, at: clock())
            }
            .assumeIsolated()
            .whenComplete { outcome in
                switch outcome {
                case .success(.success(let verified)):
                    intermediates.remember(verified.chain)
                    state.clientCertificate = verified.info
                    promise.succeed(.certificateVerified(VerificationMetadata(nil)))
                case .success(.failure(let rejection)):
                    state.rejection = rejection
                    promise.succeed(.failed)
                case .failure(let error):
                    state.rejection = .malformed("verification did not finish: \(error)")
                    promise.succeed(.failed)
                }
            }
        }
    }
}

/// Sits behind `NIOSSLServerHandler` until the handshake completes. On success it hands the negotiated
/// ALPN protocol to `onHandshake` (which installs the next protocol), buffers anything read meanwhile,
/// replays it and removes itself. On failure it reports once and closes.
final class TLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny

    private enum Phase {
        case handshaking
        case switching
        case unbuffering
        case failed
    }

    private var phase = Phase.handshaking
    private var buffered: CircularBuffer<NIOAny> = []
    private let onHandshake: (ChannelHandlerContext, String?) -> EventLoopFuture<Void>
    private let onFailure: (any Error) -> Void
    private let onClosedEarly: () -> Void

    init(
        onHandshake: @escaping (ChannelHandlerContext, String?) -> EventLoopFuture<Void>,
        onFailure: @escaping (any Error) -> Void,
        onClosedEarly: @escaping () -> Void
    ) {
        self.onHandshake = onHandshake
        self.onFailure = onFailure
        self.onClosedEarly = onClosedEarly
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshaking = phase, let tlsEvent = event as? TLSUserEvent,
            case .handshakeCompleted(let negotiated) = tlsEvent
        else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        phase = .switching
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        onHandshake(context, negotiated)
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let (handler, context) = loopBound.value
                handler.switched(context: context, result: result)
            }
    }

    private func switched(context: ChannelHandlerContext, result: Result<Void, any Error>) {
        switch result {
        case .success:
            phase = .unbuffering
            while let data = buffered.popFirst() {
                context.fireChannelRead(data)
            }
            context.fireChannelReadComplete()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        case .failure(let error):
            phase = .failed
            buffered.removeAll()
            onFailure(error)
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .unbuffering:
            context.fireChannelRead(data)
        case .handshaking, .switching:
            buffered.append(data)
        case .failed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .unbuffering = phase { context.fireChannelReadComplete() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch phase {
        case .handshaking:
            phase = .failed
            onFailure(error)
            context.close(promise: nil)
        case .failed:
            break
        case .switching, .unbuffering:
            context.fireErrorCaught(error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .handshaking = phase {
            phase = .failed
            onClosedEarly()
        }
        context.fireChannelInactive()
    }
}
