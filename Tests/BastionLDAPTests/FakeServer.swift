@testable import BastionLDAP
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A stand-in for a directory server on 127.0.0.1, behaving as a test needs: silent, rude or
/// scripted. It counts the connections it accepted.
final class FakeLDAPServer: Sendable {
    enum Behaviour: Sendable {
        /// Accepts the connection and never answers.
        case silent
        /// Answers the first bytes with these bytes.
        case reply([UInt8])
        /// Answers the first bytes with these bytes, then closes.
        case replyAndClose([UInt8])
        /// Answers each decoded request with the bytes the closure returns; nil closes the connection.
        case scripted(@Sendable (LDAPMessage) -> [UInt8]?)
    }

    let port: Int
    private let channel: any Channel
    private let accepted: Accepted

    final class Accepted: Sendable {
        let count = Mutex(0)
    }

    var acceptedConnections: Int { accepted.count.withLock { $0 } }

    private init(port: Int, channel: any Channel, accepted: Accepted) {
        self.port = port
        self.channel = channel
        self.accepted = accepted
    }

    /// With `tls`, the server speaks TLS from the first byte (as on an ldaps:// port).
    static func start(_ behaviour: Behaviour, tls: NIOSSLContext? = nil) async throws -> FakeLDAPServer {
        let accepted = Accepted()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                accepted.count.withLock { $0 += 1 }
                return child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try child.pipeline.syncOperations.addHandler(FakeServerHandler(behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeLDAPServer(port: channel.localAddress!.port!, channel: channel, accepted: accepted)
    }

    var url: LDAPURL { LDAPURL(scheme: .ldap, host: "127.0.0.1", port: port) }

    func stop() async {
        try? await channel.close()
    }
}

private final class FakeServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let behaviour: FakeLDAPServer.Behaviour
    var received = ByteBuffer()

    init(behaviour: FakeLDAPServer.Behaviour) { self.behaviour = behaviour }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch behaviour {
        case .silent:
            return
        case .reply(let reply):
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
        case .replyAndClose(let reply):
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .scripted(let answer):
            received.writeBuffer(&bytes)
            while let message = try? LDAPMessageDecoder.decode(bytes: &received) {
                guard let reply = answer(message) else {
                    context.close(promise: nil)
                    return
                }
                if !reply.isEmpty { context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
