import MQTTCodec
import NIOCore

/// One side of a bridge as an MQTT client: frames and decodes what the broker on the other end
/// sends and hands each packet to the link; encodes the link's packets into one buffer per burst.
/// Used for both sides: the remote broker, and this broker's own session for the bridge.
final class MQTTClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side: Sendable, CustomStringConvertible {
        case local, remote
        var description: String { self == .local ? "local" : "remote" }
    }

    let side: Side
    let version: ProtocolVersion
    private var decoder: MQTTPacketDecoder
    private var inbound: ByteBuffer?
    private var outbound: ByteBuffer?
    private var context: ChannelHandlerContext?
    /// Owned by the link, which lives as long as the bridge; only touched on the channel's loop.
    private unowned let link: BridgeLink

    init(side: Side, version: ProtocolVersion, maximumPacketSize: Int, link: BridgeLink) {
        self.side = side
        self.version = version
        self.decoder = MQTTPacketDecoder(version: version, limits: DecoderLimits(maximumPacketSize: maximumPacketSize), sender: .server)
        self.link = link
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }
    var isOpen: Bool { context != nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { link.channelActive(self) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        link.channelActive(self)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        link.channelClosed(self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if inbound == nil {
            inbound = bytes
        } else {
            inbound!.writeBuffer(&bytes)
        }
        while self.context != nil, var buffer = inbound {
            inbound = nil
            let packet: MQTTPacket?
            do {
                packet = try decoder.decodePacket(buffer: &buffer)
            } catch {
                link.protocolError(self, "\(error)")
                close()
                return
            }
            if buffer.readableBytes > 0 { inbound = buffer }
            guard let packet else { break }
            link.received(packet, from: self)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link.readComplete(self)
        flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.becameWritable(self) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        link.protocolError(self, "\(error)")
        context.close(promise: nil)
    }

    /// Queues a packet; `flush()` writes everything queued at once.
    func write(_ packet: MQTTPacket) {
        guard let context else { return }
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: max(256, packet.encodedSize(version: version))) }
        packet.write(version: version, to: &outbound!)
    }

    func flush() {
        guard let context, let buffer = outbound else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func close() {
        flush()
        context?.close(promise: nil)
    }
}
