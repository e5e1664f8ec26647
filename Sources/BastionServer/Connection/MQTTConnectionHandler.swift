import BastionCore
import BastionSecurity
import DequeModule
import Logging
import MQTTCodec
import NIOCore

/// The one handler per connection that does IO for the MQTT session logic in BastionCore: it
/// frames and decodes inbound bytes, dispatches packets to the per-packet files
/// (`Connection+Connect`, `+Publish`, `+Subscribe`, `+Close`), and writes what they decide.
/// Everything here runs on the channel's event loop.
/// A send that waits for a store commit (see `sendAfterCommit`).
enum GatedSend {
    case publish(OutboundFlow.Outgoing)
    case pubrel(UInt16)
}

final class RareConnectionState {
    /// Before CONNECT: when its first byte arrived and how many bytes came (the rate floor).
    var firstByteAt: NIODeadline?
    var preConnectBytes = 0
    /// When the socket last became unwritable (the client stopped reading); nil while writable.
    var unwritableSince: NIODeadline?
    var pendingPackets: [MQTTPacket] = []
    var authExchange: (any AuthenticationExchange)?
    /// An enhanced-authentication step is waiting for its answer.
    var authStepPending = false
    var authMethod: String?
    var acceptedConnect: AcceptedConnect?
    var finalAuthenticationData: ByteBuffer?
    var will: ConnectPacket.Will?
    var closeReason: String?
}

final class IdentityBox {
    let identity: ClientIdentity

    init(_ identity: ClientIdentity) { self.identity = identity }
}

struct PendingAcknowledgement {
    enum State { case waiting, ready, failed, withheld }
    var packet: MQTTPacket
    var state: State
}

/// `@unchecked Sendable` because the handler is also its session's `ConnectionRef`: other loops
/// hold it and read only `eventLoop` and `loopIndex` (immutable); everything else is used on its
/// own loop, where `LoopWorker` hands deliveries to it.
final class MQTTConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, ConnectionRef, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase: Equatable {
        case awaitingConnect
        /// CONNECT accepted for checking; waiting for authentication and the session.
        case connecting
        case connected
        /// Closing or closed: inbound bytes are ignored.
        case closed
    }

    let broker: Broker
    let info: ConnectionInfo
    var context: ChannelHandlerContext?
    let worker: LoopWorker
    var decoder: MQTTPacketDecoder
    private var inbound: ByteBuffer?
    /// Packets written since the last flush.
    var outbound = OutboundBatch()
    var lastActivity = NIODeadline.now()
    /// Packets that arrived after CONNECT while authentication runs.
    var pendingPackets: [MQTTPacket] {
        get { rare?.pendingPackets ?? [] }
        set {
            if newValue.isEmpty, rare == nil { return }
            rareState().pendingPackets = newValue
        }
    }
    /// A running 5.0 enhanced authentication exchange (CONNECT or re-authentication).
    var authExchange: (any AuthenticationExchange)? {
        get { rare?.authExchange }
        set { setRare(\.authExchange, newValue) }
    }
    var authMethod: String? {
        get { rare?.authMethod }
        set { setRare(\.authMethod, newValue) }
    }
    var acceptedConnect: AcceptedConnect? {
        get { rare?.acceptedConnect }
        set { setRare(\.acceptedConnect, newValue) }
    }
    var finalAuthenticationData: ByteBuffer? {
        get { rare?.finalAuthenticationData }
        set { setRare(\.finalAuthenticationData, newValue) }
    }
    /// State most connections need only briefly or never (CONNECT in progress, enhanced
    /// authentication, a will), kept out of line so an idle connection stays small.
    var rare: RareConnectionState?

    func rareState() -> RareConnectionState {
        if let rare { return rare }
        let created = RareConnectionState()
        rare = created
        return created
    }

    /// Clearing a field of state that was never allocated allocates nothing.
    private func setRare<Value>(_ field: ReferenceWritableKeyPath<RareConnectionState, Value?>, _ value: Value?) {
        if value == nil, rare == nil { return }
        rareState()[keyPath: field] = value
    }

    // Established by CONNECT.
    var clientID = ""
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
    var will: ConnectPacket.Will? {
        get { rare?.will }
        set { setRare(\.will, newValue) }
    }
    /// The session this connection serves; kept after detaching so late deliveries can follow it.
    var session: SessionHandle?
    var state: SessionState?
    var inboundPublish = InboundPublishState(receiveMaximum: 65535, topicAliasMaximum: 0)
    var outboundPublish = OutboundPublishEncoder(version: .v3_1_1, client: ClientCapabilities(), serverAliasLimit: 0)

    /// Acknowledgements waiting for their store commit, in arrival order.
    var pendingAcknowledgements: Deque<PendingAcknowledgement> = []
    /// Sequence number of `pendingAcknowledgements.first`.
    var acknowledgementBase = 0
    /// QoS 2 sends waiting for their store commit, in order.
    var gatedSends: Deque<(item: GatedSend, ready: Bool)> = []
    var gatedBase = 0

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
    /// Session Expiry Interval from CONNECT (DISCONNECT may not raise it from 0).
    var connectExpiryInterval: UInt32 = 0
    var phase = Phase.awaitingConnect
    /// Set when this handler wrote without flushing; the worker flushes at the end of the burst.
    var needsFlush = false
    var keepAlive = KeepAlive(seconds: 0)
    var version = ProtocolVersion.v3_1_1
    var client = ClientCapabilities()
    var throttleReported = false
    /// Backpressure: reading and decoding are paused until the rate limiter refills.
    var readPaused = false
    /// Reading stopped because too many acknowledgements wait for the store.
    var pausedForAcknowledgements = false
    var willSuppressed = false
    /// The client ended the session with DISCONNECT (it does not count as flapping).
    var cleanDisconnect = false
    /// A read was asked for while the socket was unwritable; it is issued once writable again.
    var heldRead = false
    /// On plain listeners the handler, not a close-future callback, tells the abuse gate the
    /// connection is gone (one allocation less per connection).
    let reportsCloseToProtection: Bool

    init(
        broker: Broker, eventLoop: any EventLoop, info: ConnectionInfo, listenerIndex: Int = 0,
        remoteAddress: SocketAddress? = nil, acceptedAt: NIODeadline = .now(), reportsCloseToProtection: Bool = false
    ) {
        self.reportsCloseToProtection = reportsCloseToProtection
        self.broker = broker
        self.worker = broker.worker(on: eventLoop)
        self.info = info
        self.listenerSlot = UInt16(clamping: listenerIndex)
        self.remoteAddress = remoteAddress
        self.acceptedAt = acceptedAt
        self.decoder = MQTTPacketDecoder(limits: broker.connectDecoderLimits(listenerIndex: listenerIndex))
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
    /// scheduled task per connection): the CONNECT deadline and keep alive (spec 3.1.2.10).
    func checkDeadlines(now: NIODeadline) {
        if let since = rare?.unwritableSince, phase != .closed, now - since >= TimeAmount(broker.limits.writeStallTimeout) {
            logger.notice("client has not read what it was sent for the write stall timeout; closing")
            auditLimit(.outboundBudget, .disconnected)
            closeReason = "write stall timeout"
            return close()
        }
        switch phase {
        case .awaitingConnect, .connecting:
            if phase == .awaitingConnect, connectTooSlow(now: now) {
                logger.notice("CONNECT arriving slower than the minimum rate; closing")
                auditLimit(.connectRate, .disconnected, value: rare?.preConnectBytes, maximum: broker.limits.connectMinimumBytesPerSecond)
                broker.protection?.preConnectViolation(remote: remoteAddress)
                closeReason = "connect too slow"
                return close()
            }
            guard now >= acceptedAt + broker.connectTimeout else { return }
            logger.notice("no CONNECT within the connect timeout; closing")
            auditLimit(.connectTimeout, .disconnected)
            // Waiting for our own authentication is not the client's fault; silence is.
            if phase == .awaitingConnect { broker.protection?.preConnectViolation(remote: remoteAddress) }
            closeReason = "connect timeout"
            close()
        case .connected:
            // A credential that expires (a token from a backend with disconnect_on_expiry) ends
            // the session then: 5.0 DISCONNECT 0xA0 Maximum connect time, 3.1.1 a close.
            if let expiry = identity?.expiresAt, now >= expiry {
                logger.info("credential expired; disconnecting")
                closeReason = "credential expired"
                return disconnect(.maximumConnectTime, reasonString: "the credential has expired")
            }
            guard keepAlive.hasExpired(lastActivity: lastActivity, now: now) else { return }
            logger.info("keep alive timeout")
            closeReason = "keep alive timeout"
            disconnect(.keepAliveTimeout)
        case .closed:
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
        let wasConnected = phase == .connected
        phase = .closed
        if wasConnected || session != nil {
            connectionLost(now: .now())
        }
        worker.flush()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Transport errors (TLS alerts, resets) end the connection; the will is sent.
        if phase != .closed {
            logger.debug("connection error: \(error)")
            closeReason = "transport error: \(error)"
            close()
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard phase != .closed else { return }
        lastActivity = .now()
        worker.traffic.bytesReceived.add(bytes.readableBytes, ordering: .relaxed)
        if phase == .awaitingConnect {
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
        while phase != .closed, !readPaused, inbound != nil {
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

    /// Dispatches one packet according to the connection phase.
    func received(_ packet: MQTTPacket) {
        switch phase {
        case .awaitingConnect:
            guard case .connect(let connect) = packet else {
                broker.protection?.preConnectViolation(remote: remoteAddress)
                return protocolViolation(.protocolError, "first packet must be CONNECT")
            }
            connectReceived(connect)
        case .connecting:
            if case .auth(let auth) = packet { return authReceived(auth) }
            // Allowed by the spec (3.1.4); processed once the session is attached. Bounded so a
            // client cannot park unbounded work behind a slow authentication.
            guard pendingPackets.count < broker.limits.maximumInflight + 16 else {
                return protocolViolation(.receiveMaximumExceeded, "too many packets before CONNACK")
            }
            pendingPackets.append(packet)
        case .connected:
            dispatch(packet)
        case .closed:
            break
        }
    }

    private func dispatch(_ packet: MQTTPacket) {
        switch packet {
        case .publish(let p): publishReceived(p)
        case .puback(let p): pubackReceived(p)
        case .pubrec(let p): pubrecReceived(p)
        case .pubrel(let p): pubrelReceived(p)
        case .pubcomp(let p): pubcompReceived(p)
        case .subscribe(let p): subscribeReceived(p)
        case .unsubscribe(let p): unsubscribeReceived(p)
        case .pingreq: send(.pingresp)
        case .disconnect(let p): disconnectReceived(p)
        case .auth(let p): authReceived(p)
        case .connect: protocolViolation(.protocolError, "second CONNECT")
        case .connack, .suback, .unsuback, .pingresp:
            protocolViolation(.protocolError, "\(packet.type) is sent only by servers")
        }
    }

    /// Processes what arrived between CONNECT and the session being attached.
    func drainPendingPackets() {
        let packets = pendingPackets
        pendingPackets = []
        for packet in packets where phase == .connected { dispatch(packet) }
    }

    private func decodeFailed(_ error: MQTTDecodeError) {
        if phase == .awaitingConnect, case .unsupportedProtocolVersion(let name, let level) = error {
            logger.notice("refused CONNECT: unsupported protocol \(name) level \(level)")
            // Answer in the format the client most likely reads (spec 3.1.2.2 / 3.1.4).
            let replyVersion: ProtocolVersion = level >= 5 ? .v5 : .v3_1_1
            send(.connack(ConnackPacket(reasonCode: .unsupportedProtocolVersion)), version: replyVersion)
            closeReason = "unsupported protocol version"
            close()
            return
        }
        if phase == .awaitingConnect {
            broker.protection?.preConnectViolation(remote: remoteAddress)
            if case .packetTooLarge(let announced, let maximum) = error {
                logger.notice("CONNECT larger than max_connect_packet_size; closing", metadata: ["size": "\(announced)"])
                auditLimit(.connectPacketSize, .disconnected, value: announced, maximum: maximum)
                // A 5.0 client learns why (CONNACK 0x95) when its header shows the version.
                if announcedProtocolLevel() == ProtocolVersion.v5.rawValue {
                    send(.connack(ConnackPacket(reasonCode: .packetTooLarge)), version: .v5)
                }
                closeReason = "CONNECT too large"
                return close()
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

    // MARK: Outbound

    func send(_ packet: MQTTPacket) { send(packet, version: version) }

    func send(_ packet: MQTTPacket, version: ProtocolVersion) {
        guard let context else { return }
        let size = packet.encodedSize(version: version)
        outbound.encode(capacity: size, allocator: context.channel.allocator) { packet.write(version: version, to: &$0) }
        worker.traffic.bytesSent.add(size, ordering: .relaxed)
        worker.markDirty(self)
    }

    /// Writes a PUBLISH as a small header buffer followed by the shared payload slice: the payload
    /// is never copied per subscriber. Returns false when the client's Maximum Packet Size rules
    /// the message out (it is then discarded as if delivered).
    func sendPublish(_ delivery: Delivery, packetID: UInt16, dup: Bool, now: NIODeadline) -> Bool {
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

    /// Reason string for a failure acknowledgement, unless the client asked for no problem
    /// information (spec 3.1.2.11.7) or it would push the packet past the client's maximum.
    func problemProperties(_ reason: String?) -> AckProperties {
        guard version == .v5, client.requestProblemInformation, let reason else { return AckProperties() }
        return AckProperties(reasonString: String(reason.utf8.prefix(min(1024, max(0, client.maximumPacketSize - 64)))) ?? "")
    }

    // MARK: Closing

    /// A protocol violation: 5.0 clients get DISCONNECT with the reason (spec 4.13), 3.1.1 clients
    /// are just disconnected (spec 4.8).
    func protocolViolation(_ reason: ReasonCode, _ message: String) {
        logger.notice("protocol violation: \(message)", metadata: ["client_id": "\(clientID)", "reason": "\(reason)"])
        closeReason = "\(reason.name): \(message)"
        disconnect(reason, reasonString: message)
    }

    /// Server-initiated DISCONNECT (5.0, once CONNECT was seen) followed by close.
    func disconnect(_ reason: ReasonCode, reasonString: String? = nil) {
        if version == .v5, phase == .connected || phase == .connecting {
            var properties = DisconnectProperties()
            if client.requestProblemInformation { properties.reasonString = reasonString }
            var packet = DisconnectPacket(reasonCode: reason, properties: properties)
            if MQTTPacket.disconnect(packet).encodedSize(version: .v5) > client.maximumPacketSize {
                packet.properties = DisconnectProperties()
            }
            send(.disconnect(packet))
        }
        close()
    }

    func close() {
        guard phase != .closed || context != nil else { return }
        if phase != .closed { phase = .closed }
        guard let context else { return }
        flushIfNeeded()
        context.close(promise: nil)
    }
}
