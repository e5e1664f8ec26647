@_spi(Testing) import BastionServer
import BastionCore
import Logging
import MQTTCodec
import NIOCore
import NIOEmbedded

/// A broker on one EmbeddedEventLoop with clients on EmbeddedChannels: the connection handler's
/// behaviour end to end, without sockets or real time.
public final class EmbeddedBroker {
    public let loop = EmbeddedEventLoop()
    private let broker: BrokerUnderTest

    public init(limits: BrokerLimits = BrokerLimits(), enhancedAuthenticator: (any EnhancedAuthenticator)? = nil) {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        broker = BrokerUnderTest(group: loop, limits: limits, logger: logger, enhancedAuthenticator: enhancedAuthenticator)
    }

    public func client(allowAnonymous: Bool = true) throws -> EmbeddedClient {
        let channel = EmbeddedChannel(loop: loop)
        let info = ConnectionInfo(listener: "mqtt://127.0.0.1:1883", remoteAddress: "127.0.0.1:1", allowAnonymous: allowAnonymous)
        try channel.pipeline.syncOperations.addHandler(broker.connectionHandler(eventLoop: channel.eventLoop, info: info))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return EmbeddedClient(channel: channel, loop: loop)
    }
}

public final class EmbeddedClient {
    public let channel: EmbeddedChannel
    public let loop: EmbeddedEventLoop
    public var version: ProtocolVersion = .v5
    private var decoder = MQTTPacketDecoder(version: .v5, limits: DecoderLimits(maximumPacketSize: 1 << 24))
    private var pending = ByteBuffer()

    init(channel: EmbeddedChannel, loop: EmbeddedEventLoop) {
        self.channel = channel
        self.loop = loop
    }

    public func send(_ packet: MQTTPacket) throws {
        if case .connect(let c) = packet {
            version = c.protocolVersion
            decoder.version = c.protocolVersion
        }
        var buffer = ByteBuffer()
        packet.write(version: version, to: &buffer)
        try channel.writeInbound(buffer)
        try channel.pipeline.syncOperations.fireChannelReadComplete()
        loop.run()
    }

    /// The next packet the broker wrote, or nil.
    public func receive() throws -> MQTTPacket? {
        loop.run()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { pending.writeBuffer(&chunk) }
        return try decoder.decodePacket(buffer: &pending)
    }

    public func receiveAll() throws -> [MQTTPacket] {
        var out: [MQTTPacket] = []
        while let p = try receive() { out.append(p) }
        return out
    }

    @discardableResult
    public func connect(_ id: String, version: ProtocolVersion = .v5, clean: Bool = true, properties: ConnectProperties = .init()) throws -> ConnackPacket? {
        try send(.connect(ConnectPacket(protocolVersion: version, cleanStart: clean, clientID: id, properties: properties)))
        if case .connack(let ack) = try receive() { return ack }
        return nil
    }

    public var isActive: Bool { channel.isActive }
}
