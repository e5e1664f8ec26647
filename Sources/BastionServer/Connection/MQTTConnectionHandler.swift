import BastionCore
import BastionSecurity
import Logging
import MQTTCodec
import NIOCore
import Sparkplug
import Synchronization

/// The one handler per connection: it frames and decodes inbound bytes, asks the connection's
/// `SessionMachine` (BastionCore) what each packet means, and carries out the answer — talking to
/// the broker's shared parts (authentication, the session table, the router, the store) and
/// writing to the channel only through `run(_:)`. The per-concern files
/// (`Connection+Connect`, `+Publish`, `+Deliver`, `+Subscribe`, `+Close`, `+Protection`) hold
/// that glue. Everything here runs on the channel's event loop.
final class RareConnectionState {
    /// Before CONNECT: when its first byte arrived and how many bytes came (the rate floor).
    var firstByteAt: NIODeadline?
    var preConnectBytes = 0
    /// When the socket last became unwritable (the client stopped reading); nil while writable.
    var unwritableSince: NIODeadline?
    /// A running 5.0 enhanced authentication exchange (CONNECT or re-authentication).
    var authExchange: (any AuthenticationExchange)?
    /// An enhanced-authentication step is waiting for its answer.
    var authStepPending = false
    var closeReason: String?
}

/// A connection the broker opens to itself for a bridge's local session (an in-process socket
/// pair): no listener and no password; its identity, its access and its queue limits come from
/// the bridge's configuration.
final class InternalPeer: @unchecked Sendable {
    /// The session owner: no listener or user name produces it, so no client can claim the session.
    let owner: String
    let identity: ClientIdentity
    /// Immutable after creation (`@unchecked`: the protocol does not promise `Sendable`).
    let authorizer: any ClientAuthorizer
    let limits: BrokerLimits
    let bridgeName: String
    /// Messages the bridge's queue dropped for lack of room, and for waiting longer than max_age.
    let dropped = Atomic<Int>(0)
    let expired = Atomic<Int>(0)

    let ages: BridgeQueueAges

    init(bridgeName: String, owner: String, identity: ClientIdentity, authorizer: any ClientAuthorizer, limits: BrokerLimits,
         ages: BridgeQueueAges) {
        self.bridgeName = bridgeName
        self.ages = ages
        self.owner = owner
        self.identity = identity
        self.authorizer = authorizer
        self.limits = limits
    }
}

final class IdentityBox {
    let identity: ClientIdentity

    init(_ identity: ClientIdentity) { self.identity = identity }
}

/// What the handler writes. `run(_:)` is the only code that writes to the channel.
enum ConnectionAction {
    /// A packet in the connection's protocol version.
    case send(MQTTPacket)
    /// A packet in an explicit version (a CONNACK before the version is settled).
    case sendAs(MQTTPacket, ProtocolVersion)
    /// A PUBLISH: its header, then the shared payload.
    case publish(Delivery, packetID: UInt16, dup: Bool, now: NIODeadline)
    /// Server-initiated DISCONNECT (5.0, once CONNECT was seen), then close.
    case disconnect(ReasonCode, reasonString: String?)
    case close
}

/// `@unchecked Sendable` because the handler is also its session's `ConnectionRef`: other loops
/// hold it and read only `eventLoop` and `loopIndex` (immutable); everything else is used on its
/// own loop, where `LoopWorker` hands deliveries to it.
final class MQTTConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, ConnectionRef, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let broker: Broker
    let info: ConnectionInfo
    var context: ChannelHandlerContext?
    let worker: LoopWorker
    var decoder: MQTTPacketDecoder
    private var inbound: ByteBuffer?
    /// Packets written since the last flush.
    var outbound = OutboundBatch()
    var lastActivity = NIODeadline.now()
    /// The protocol decisions for this connection.
    var machine: SessionMachine
    /// State most connections need only briefly or never (CONNECT in progress, enhanced
    /// authentication, a stalled socket), kept out of line so an idle connection stays small.
    var rare: RareConnectionState?

    func rareState() -> RareConnectionState {
        if let rare { return rare }
        let created = RareConnectionState()
        rare = created
        return created
    }

    var authExchange: (any AuthenticationExchange)? {
        get { rare?.authExchange }
        set {
            if newValue == nil, rare == nil { return }
            rareState().authExchange = newValue
        }
    }

    var clientID: String { machine.clientID }
    var version: ProtocolVersion { machine.version }
    var client: ClientCapabilities { machine.client }
    /// Read for audit records and ACL refreshes only, so kept out of line.
    var identity: ClientIdentity? {
        get { identityBox?.identity }
        set { identityBox = newValue.map(IdentityBox.init) }
    }
    private var identityBox: IdentityBox?
    var authorizer: any ClientAuthorizer = AllowAllAuthorizer.shared
    /// The security generation `authorizer` was made for (reloads bump it).
    var authorizerGeneration: Int {
        get { Int(authorizerEpoch) }
        set { authorizerEpoch = UInt32(truncatingIfNeeded: newValue) }
    }
    /// The session this connection serves; kept after detaching so late deliveries can follow it.
    var session: SessionHandle?
    var outboundPublish = OutboundPublishEncoder(version: .v3_1_1, client: ClientCapabilities(), serverAliasLimit: 0)

    /// Inbound PUBLISH rate (messages/s, bytes/s) for this client; nil without protection.
    var rateLimiter: RateLimiterBox?
    let remoteAddress: SocketAddress?
    /// When the socket was accepted: CONNECT must complete within the connect timeout of this.
    let acceptedAt: NIODeadline

    /// How the connection ends, for the will and the log.
    var closeReason: String {
        get { rare?.closeReason ?? "connection lost" }
        set { rareState().closeReason = newValue }
    }

    var listenerIndex: Int { Int(listenerSlot) }

    // Small fields last, together: fewer padding bytes in every connection.
    private let listenerSlot: UInt16
    private var authorizerEpoch: UInt32 = 0
    /// Set when this handler wrote without flushing; the worker flushes at the end of the burst.
    var needsFlush = false
    var throttleReported = false
    /// Sparkplug state, allocated on this connection's first Sparkplug publish.
    var sparkplug: SparkplugConnectionState?
    /// Backpressure: reading and decoding are paused until the rate limiter refills.
    var readPaused = false
    /// Reading stopped because too many acknowledgements wait for the store.
    var pausedForAcknowledgements = false
    /// A read was asked for while the socket was unwritable; it is issued once writable again.
    var heldRead = false
    /// On plain listeners the handler, not a close-future callback, tells the abuse gate the
    /// connection is gone (one allocation less per connection).
    let reportsCloseToProtection: Bool
    /// Set for a bridge's local session (see `InternalPeer`).
    let internalPeer: InternalPeer?

    init(
        broker: Broker, eventLoop: any EventLoop, info: ConnectionInfo, listenerIndex: Int = 0,
        remoteAddress: SocketAddress? = nil, acceptedAt: NIODeadline = .now(), reportsCloseToProtection: Bool = false,
        internalPeer: InternalPeer? = nil
    ) {
        self.reportsCloseToProtection = reportsCloseToProtection
        self.internalPeer = internalPeer
        self.broker = broker
        self.worker = broker.worker(on: eventLoop)
        self.info = info
        self.listenerSlot = UInt16(clamping: listenerIndex)
        self.remoteAddress = remoteAddress
        self.acceptedAt = acceptedAt
        self.decoder = MQTTPacketDecoder(limits: broker.connectDecoderLimits(listenerIndex: listenerIndex))
        var configuration = broker.sessionConfiguration
        if let internalPeer { configuration.limits = internalPeer.limits }
        self.machine = SessionMachine(configuration: configuration)
    }

    // MARK: ConnectionRef (read from any loop)

    var eventLoop: any EventLoop { worker.eventLoop }
    var loopIndex: Int { worker.index }

    // MARK: Channel lifecycle

    var logger: Logger {
        // Metadata is added when something is logged, not stored per idle connection.
        var logger = broker.logger
        logger[metadataKey: "remote"] = "\(info.remoteAddress)"
        logger[metadataKey: "listener"] = "\(info.listener)"
        if !clientID.isEmpty { logger[metadataKey: "client_id"] = "\(clientID)" }
        return logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        worker.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        worker.unregister(self)
        self.context = nil
        if reportsCloseToProtection, let protection = broker.protection {
            protection.closed(remote: remoteAddress)
        }
    }

    /// Called by the loop's periodic sweep (every connection's timers in one pass, rather than a
    /// scheduled task per connection): the CONNECT deadline, the CONNECT rate floor, keep alive
    /// (spec 3.1.2.10) and the write stall limit.
    func checkDeadlines(now: NIODeadline) {
        if let since = rare?.unwritableSince, !machine.isClosed, now - since >= TimeAmount(broker.limits.writeStallTimeout) {
            logger.notice("client has not read what it was sent for the write stall timeout; closing")
            auditLimit(.outboundBudget, .disconnected)
            closeReason = "write stall timeout"
            run(.close)
            return
        }
        switch machine.phase {
        case .awaitingConnect, .connecting:
            if machine.isAwaitingConnect, connectTooSlow(now: now) {
                logger.notice("CONNECT arriving slower than the minimum rate; closing")
                auditLimit(.connectRate, .disconnected, value: rare?.preConnectBytes, maximum: broker.limits.connectMinimumBytesPerSecond)
                broker.protection?.preConnectViolation(remote: remoteAddress)
                closeReason = "connect too slow"
                run(.close)
                return
            }
            guard now >= acceptedAt + broker.connectTimeout else { return }
            logger.notice("no CONNECT within the connect timeout; closing")
            auditLimit(.connectTimeout, .disconnected)
            // Waiting for our own authentication is not the client's fault; silence is.
            if machine.isAwaitingConnect { broker.protection?.preConnectViolation(remote: remoteAddress) }
            closeReason = "connect timeout"
            run(.close)
        case .connected:
            // A credential that expires (a token from a backend with disconnect_on_expiry) ends
            // the session then: 5.0 DISCONNECT 0xA0 Maximum connect time, 3.1.1 a close.
            if let expiry = identity?.expiresAt, now >= expiry {
                logger.info("credential expired; disconnecting")
                closeReason = "credential expired"
                run(.disconnect(.maximumConnectTime, reasonString: "the credential has expired"))
                return
            }
            guard machine.keepAlive.hasExpired(lastActivity: lastActivity, now: now) else { return }
            logger.info("keep alive timeout")
            closeReason = "keep alive timeout"
            run(.disconnect(.keepAliveTimeout, reasonString: nil))
        case .closing, .closed:
            break
        }
    }

    /// The rate floor before CONNECT: once its first byte is in and the grace has passed, the
    /// CONNECT must keep arriving at `connectMinimumBytesPerSecond` (up to its announced size).
    private func connectTooSlow(now: NIODeadline) -> Bool {
        let limits = broker.limits
        guard limits.connectMinimumBytesPerSecond > 0, let first = rare?.firstByteAt else { return false }
        let elapsed = Double((now - first).nanoseconds) / 1e9 - limits.connectGrace.seconds
        guard elapsed > 0 else { return false }
        var required = Int(elapsed * Double(limits.connectMinimumBytesPerSecond))
        if let inbound, case .value(let remaining, let count)? = try? VariableByteInteger.peek(inbound, at: 1) {
            required = min(required, 1 + count + remaining)
        }
        return (rare?.preConnectBytes ?? 0) < required
    }

    /// Tracks whether the client reads what it is sent (see `checkDeadlines` for the stall limit;
    /// `read(context:)` holds reads while unwritable).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if rare?.unwritableSince != nil { rare?.unwritableSince = nil }
            if heldRead {
                heldRead = false
                context.read()
            }
        } else {
            rareState().unwritableSince = .now()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let holdsSession = machine.state != nil
        machine.close()
        if holdsSession || session != nil {
            connectionLost(now: .now())
        }
        worker.flush()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Transport errors (TLS alerts, resets) end the connection; the will is sent.
        if !machine.isClosed {
            logger.debug("connection error: \(error)")
            closeReason = "transport error: \(error)"
            run(.close)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !machine.isClosed else { return }
        lastActivity = .now()
        worker.traffic.bytesReceived.add(bytes.readableBytes, ordering: .relaxed)
        if machine.isAwaitingConnect {
            let rare = rareState()
            if rare.firstByteAt == nil { rare.firstByteAt = lastActivity }
            rare.preConnectBytes += bytes.readableBytes
        }
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound!.writeBuffer(&bytes)
        }
        decodeAvailable()
    }

    func decodeAvailable() {
        while !machine.isClosed, !readPaused, inbound != nil {
            let packet: MQTTPacket?
            do {
                packet = try decoder.decodePacket(buffer: &inbound!)
            } catch {
                decodeFailed(error)
                return
            }
            guard let packet else { break }
            received(packet)
        }
        if let buffer = inbound, buffer.readableBytes == 0 { inbound = nil }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        worker.flush()
        context.fireChannelReadComplete()
    }

    /// One decoded packet: the machine says what it means in this phase.
    func received(_ packet: MQTTPacket) {
        switch machine.received(packet) {
        case .handle(let packet): dispatch(packet)
        case .deferred, .ignore: break
        case .violation(let reason, let why, let beforeConnect):
            if beforeConnect { broker.protection?.preConnectViolation(remote: remoteAddress) }
            protocolViolation(reason, why)
        }
    }

    private func dispatch(_ packet: MQTTPacket) {
        switch packet {
        case .connect(let p): connectReceived(p)
        case .publish(let p): publishReceived(p)
        case .puback(let p): pubackReceived(p)
        case .pubrec(let p): pubrecReceived(p)
        case .pubrel(let p): pubrelReceived(p)
        case .pubcomp(let p): pubcompReceived(p)
        case .subscribe(let p): subscribeReceived(p)
        case .unsubscribe(let p): unsubscribeReceived(p)
        case .pingreq: run(.send(.pingresp))
        case .disconnect(let p): disconnectReceived(p)
        case .auth(let p): authReceived(p)
        case .connack, .suback, .unsuback, .pingresp: break  // refused by the machine
        }
    }

    /// Processes what arrived between CONNECT and the session being attached.
    func drainPendingPackets(_ packets: [MQTTPacket]) {
        for packet in packets where machine.isConnected { received(packet) }
    }

    private func decodeFailed(_ error: MQTTDecodeError) {
        if machine.isAwaitingConnect, case .unsupportedProtocolVersion(let name, let level) = error {
            logger.notice("refused CONNECT: unsupported protocol \(name) level \(level)")
            // Answer in the format the client most likely reads (spec 3.1.2.2 / 3.1.4).
            let replyVersion: ProtocolVersion = level >= 5 ? .v5 : .v3_1_1
            run(.sendAs(.connack(ConnackPacket(reasonCode: .unsupportedProtocolVersion)), replyVersion))
            closeReason = "unsupported protocol version"
            run(.close)
            return
        }
        if machine.isAwaitingConnect {
            broker.protection?.preConnectViolation(remote: remoteAddress)
            if case .packetTooLarge(let announced, let maximum) = error {
                logger.notice("CONNECT larger than max_connect_packet_size; closing", metadata: ["size": "\(announced)"])
                auditLimit(.connectPacketSize, .disconnected, value: announced, maximum: maximum)
                // A 5.0 client learns why (CONNACK 0x95) when its header shows the version.
                if announcedProtocolLevel() == ProtocolVersion.v5.rawValue {
                    run(.sendAs(.connack(ConnackPacket(reasonCode: .packetTooLarge)), .v5))
                }
                closeReason = "CONNECT too large"
                run(.close)
                return
            }
        }
        protocolViolation(error.reasonCode, error.description)
    }

    /// The protocol level byte of a CONNECT at the start of `inbound`, if it is there yet.
    private func announcedProtocolLevel() -> UInt8? {
        guard let inbound, case .value(_, let count)? = try? VariableByteInteger.peek(inbound, at: 1) else { return nil }
        let nameLengthAt = inbound.readerIndex + 1 + count
        guard let nameLength = inbound.getInteger(at: nameLengthAt, as: UInt16.self), nameLength <= 6 else { return nil }
        return inbound.getInteger(at: nameLengthAt + 2 + Int(nameLength), as: UInt8.self)
    }

    // MARK: Outbound: the only writes

    /// Carries out a write. Returns false when a PUBLISH was not written (the client's Maximum
    /// Packet Size rules it out; it is then discarded as if delivered, spec 3.1.2.11.4).
    @discardableResult
    func run(_ action: ConnectionAction) -> Bool {
        switch action {
        case .send(let packet):
            write(packet, version: version)
        case .sendAs(let packet, let version):
            write(packet, version: version)
        case .publish(let delivery, let packetID, let dup, let now):
            return writePublish(delivery, packetID: packetID, dup: dup, now: now)
        case .disconnect(let reason, let reasonString):
            if version == .v5, machine.isConnected || machine.connecting != nil {
                var properties = DisconnectProperties()
                if client.requestProblemInformation { properties.reasonString = reasonString }
                var packet = DisconnectPacket(reasonCode: reason, properties: properties)
                if MQTTPacket.disconnect(packet).encodedSize(version: .v5) > client.maximumPacketSize {
                    packet.properties = DisconnectProperties()
                }
                write(.disconnect(packet), version: version)
            }
            closeChannel()
        case .close:
            closeChannel()
        }
        return true
    }

    private func write(_ packet: MQTTPacket, version: ProtocolVersion) {
        guard let context else { return }
        let size = packet.encodedSize(version: version)
        outbound.encode(capacity: size, allocator: context.channel.allocator) { packet.write(version: version, to: &$0) }
        worker.traffic.bytesSent.add(size, ordering: .relaxed)
        worker.markDirty(self)
    }

    /// A PUBLISH as a small header buffer followed by the shared payload slice: the payload is
    /// never copied per subscriber.
    private func writePublish(_ delivery: Delivery, packetID: UInt16, dup: Bool, now: NIODeadline) -> Bool {
        guard let context else { return false }
        let capacity = outboundPublish.headerCapacity(for: delivery)
        let headerBytes = outbound.encode(capacity: capacity, allocator: context.channel.allocator) { buffer in
            let before = buffer.writerIndex
            return self.outboundPublish.writeHeader(for: delivery, packetID: packetID, dup: dup, now: now, into: &buffer)
                ? buffer.writerIndex - before : nil
        }
        guard let headerBytes else { return false }
        let payload = delivery.message.payload
        outbound.attach(payload: payload)
        worker.traffic.sent(qos: delivery.qos.rawValue, bytes: headerBytes + payload.readableBytes)
        worker.markDirty(self)
        return true
    }

    private func closeChannel() {
        if !machine.isClosed { machine.close() }
        guard let context else { return }
        flushIfNeeded()
        context.close(promise: nil)
    }

    func flushIfNeeded() {
        guard needsFlush else { return }
        needsFlush = false
        guard let context else { return }
        if info.tlsVersion != nil {
            outbound.drainCoalesced(allocator: context.channel.allocator) { context.write(wrapOutboundOut($0), promise: nil) }
        } else {
            outbound.drain { context.write(wrapOutboundOut($0), promise: nil) }
        }
        context.flush()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    /// Every reply the broker owes comes from reading: while the client does not read what it is
    /// sent (the socket is over its high-water mark), nothing more is read from it, so replies
    /// (PINGRESP, acknowledgements, WebSocket pongs) cannot pile up in memory.
    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            heldRead = true
            return
        }
        context.read()
    }

    /// Outbound memory per connection: pending writes stop reading above `high` (see `read`).
    static let preConnectWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 16 * 1024, high: 64 * 1024)
    static let connectedWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 * 1024, high: 1024 * 1024)

    // MARK: Closing

    /// A protocol violation: 5.0 clients get DISCONNECT with the reason (spec 4.13), 3.1.1 clients
    /// are just disconnected (spec 4.8).
    func protocolViolation(_ reason: ReasonCode, _ message: String) {
        logger.notice("protocol violation: \(message)", metadata: ["client_id": "\(clientID)", "reason": "\(reason)"])
        closeReason = "\(reason.name): \(message)"
        run(.disconnect(reason, reasonString: message))
    }
}
