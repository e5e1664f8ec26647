import MQTTCodec
import NIOCore

/// Settings shared by every client of a run.
struct BenchClientSettings: Sendable {
    var version: ProtocolVersion
    var qos: QoS
    var payloadSize: Int
    var keepAlive: UInt16
    var persistentSessions = false
    var username: String?
    var password: String?
    /// Publisher in-flight window for QoS 1/2 (further capped by a 5.0 server's Receive Maximum).
    var inflight: Int
    /// Largest packet accepted from the broker.
    var maximumPacketSize: Int = 16 * 1024 * 1024
    /// Cap on the bytes one publisher writes per pump when unpaced, so a burst never starves reads.
    var unpacedBurstBytes: Int = 256 * 1024
    /// Deliveries each publish causes (subscribers per message) and the most deliveries that may be
    /// outstanding end to end; nil leaves publishers bounded only by TCP and the in-flight window.
    var deliveriesPerMessage: Int = 1
    var maxBacklog: Int?
    /// Publishers are Sparkplug edge nodes: an NBIRTH after CONNACK, then NDATA with a running seq.
    var sparkplug = false
}

enum BenchClientError: Error, CustomStringConvertible {
    case connectionRefused(ReasonCode)
    case subscriptionRefused(ReasonCode)
    case closedBeforeReady
    case connectTimeout
    case protocolViolation(String)

    var description: String {
        switch self {
        case .connectionRefused(let code): "CONNACK refused: \(code)"
        case .subscriptionRefused(let code): "SUBACK refused: \(code)"
        case .closedBeforeReady: "connection closed before ready"
        case .connectTimeout: "timed out waiting for CONNACK/SUBACK"
        case .protocolViolation(let why): "protocol: \(why)"
        }
    }
}

/// One generator connection. It connects (and subscribes), then either publishes when its loop's
/// pacer asks, counts and acknowledges what arrives, or just stays connected. Everything it
/// counts goes into its loop's `LoopState`; it never blocks and never allocates per message on
/// the receive path.
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case connecting, subscribing, ready, closed }

    let spec: BenchClientSpec
    private let settings: BenchClientSettings
    private let state: LoopState
    private let connectStartedAt: UInt64
    private let ready: EventLoopPromise<Void>

    private var phase = Phase.connecting
    private var context: ChannelHandlerContext?
    private var cumulation: ByteBuffer?
    /// Acks produced while handling one read burst, flushed once at `channelReadComplete`.
    private var pendingOutput: ByteBuffer?

    // Publisher state.
    private let template: PublishTemplate?
    private var schedule: PublishSchedule?
    private var ids: PacketIDPool
    private var sentCount = 0
    private var publishing = false
    /// Deliveries counted in this read burst, added to the run-wide counter once per burst.
    private var deliveredInBurst = 0

    init(spec: BenchClientSpec, settings: BenchClientSettings, state: LoopState, connectStartedAt: UInt64, ready: EventLoopPromise<Void>) {
        self.spec = spec
        self.settings = settings
        self.state = state
        self.connectStartedAt = connectStartedAt
        self.ready = ready
        if case .publisher(let topic, _) = spec.role {
            template = PublishTemplate(topic: topic, qos: settings.qos, payloadSize: settings.payloadSize, version: settings.version,
                                       sparkplug: settings.sparkplug)
        } else {
            template = nil
        }
        ids = PacketIDPool(capacity: settings.inflight)
    }

    var isPublisher: Bool { template != nil }
    var publisherIndex: Int {
        if case .publisher(_, let index) = spec.role { index } else { 0 }
    }
    var inFlight: Int { settings.qos == .atMostOnce ? 0 : ids.inFlight }

    // MARK: - Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        state.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        state.unregister(self)
    }

    func channelActive(context: ChannelHandlerContext) {
        var properties = ConnectProperties()
        if settings.persistentSessions && settings.version == .v5 { properties.sessionExpiryInterval = 300 }
        let connect = ConnectPacket(
            protocolVersion: settings.version, cleanStart: !settings.persistentSessions, keepAlive: settings.keepAlive,
            clientID: spec.clientID, username: settings.username, password: settings.password.map { ByteBuffer(string: $0) },
            properties: properties)
        let packet = MQTTPacket.connect(connect)
        var out = context.channel.allocator.buffer(capacity: packet.encodedSize(version: settings.version))
        packet.write(version: settings.version, to: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if phase != .ready {
            ready.fail(BenchClientError.closedBeforeReady)
        } else if !state.closing {
            state.stats.recordError("connection closed by broker")
        }
        phase = .closed
        publishing = false
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }

    private func fail(context: ChannelHandlerContext, _ description: String) {
        if phase == .ready {
            if !state.closing { state.stats.recordError(description) }
        } else {
            ready.fail(BenchClientError.protocolViolation(description))
        }
        phase = .closed
        publishing = false
        context.close(promise: nil)
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        // One clock read per read burst: every message in it arrived by now.
        let now = NIODeadline.now().uptimeNanoseconds
        if var buffered = cumulation {
            cumulation = nil
            buffered.writeBuffer(&input)
            input = buffered
        }
        do {
            while phase != .closed, let frame = try BenchWire.readFrame(from: &input, maximumSize: settings.maximumPacketSize) {
                try handle(frame, now: now, context: context)
            }
        } catch {
            fail(context: context, "\(error)")
            return
        }
        if input.readableBytes > 0 { cumulation = input }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushPending(context: context)
        if deliveredInBurst > 0 {
            state.backlog.delivered.add(deliveredInBurst, ordering: .relaxed)
            deliveredInBurst = 0
        }
        // Acks may have freed window slots: refill now rather than at the next tick.
        if publishing { pump(now: NIODeadline.now().uptimeNanoseconds) }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if publishing && context.channel.isWritable { pump(now: NIODeadline.now().uptimeNanoseconds) }
        context.fireChannelWritabilityChanged()
    }

    private func handle(_ frame: BenchWire.Frame, now: UInt64, context: ChannelHandlerContext) throws {
        switch frame.type {
        case PacketType.publish.rawValue:
            try receivePublish(frame, now: now)
        case PacketType.puback.rawValue:
            let ack = try BenchWire.parseAck(body: frame.body)
            completeDelivery(ack.packetID, reason: ack.reason, packet: "PUBACK")
        case PacketType.pubrec.rawValue:
            let ack = try BenchWire.parseAck(body: frame.body)
            if ack.reason >= 0x80 {
                completeDelivery(ack.packetID, reason: ack.reason, packet: "PUBREC")
            } else if ids.isInFlight(ack.packetID) {
                appendAck(.pubrel, ack.packetID, context: context)
            } else {
                state.stats.recordError("PUBREC for unknown packet identifier")
            }
        case PacketType.pubcomp.rawValue:
            let ack = try BenchWire.parseAck(body: frame.body)
            completeDelivery(ack.packetID, reason: ack.reason, packet: "PUBCOMP")
        case PacketType.pubrel.rawValue:
            let ack = try BenchWire.parseAck(body: frame.body)
            appendAck(.pubcomp, ack.packetID, context: context)
        case PacketType.pingresp.rawValue:
            break
        default:
            try receiveControl(frame, now: now, context: context)
        }
    }

    private func receivePublish(_ frame: BenchWire.Frame, now: UInt64) throws {
        let publish = try BenchWire.parsePublish(flags: frame.flags, body: frame.body, version: settings.version)
        state.stats.received += 1
        deliveredInBurst += 1
        if let window = state.window {
            if window.contains(now) { state.stats.receivedInWindow += 1 }
            if let sentAt = publish.sentAt {
                if window.contains(sentAt) { state.stats.recordLatency(now &- sentAt) }
            } else {
                state.stats.receivedForeign += 1
            }
        }
        switch publish.qos {
        case 1: appendAck(.puback, publish.packetID, context: nil)
        case 2: appendAck(.pubrec, publish.packetID, context: nil)
        default: break
        }
    }

    private func completeDelivery(_ id: UInt16, reason: UInt8, packet: String) {
        guard ids.release(id) else {
            state.stats.recordError("\(packet) for unknown packet identifier")
            return
        }
        if reason >= 0x80 {
            state.stats.recordError("\(packet) reason \(ReasonCode(rawValue: reason))")
        } else {
            state.stats.acknowledged += 1
        }
    }

    private func receiveControl(_ frame: BenchWire.Frame, now: UInt64, context: ChannelHandlerContext) throws {
        var decoder = MQTTPacketDecoder(version: settings.version, limits: DecoderLimits(maximumPacketSize: settings.maximumPacketSize))
        var bytes = frame.packet
        guard let packet = try decoder.decodePacket(buffer: &bytes) else {
            throw BenchClientError.protocolViolation("incomplete packet")
        }
        switch (phase, packet) {
        case (.connecting, .connack(let connack)):
            guard !connack.reasonCode.isFailure else {
                ready.fail(BenchClientError.connectionRefused(connack.reasonCode))
                phase = .closed
                context.close(promise: nil)
                return
            }
            state.stats.connected += 1
            state.stats.recordConnectTime(now &- connectStartedAt)
            if let receiveMaximum = connack.properties.receiveMaximum, Int(receiveMaximum) < ids.capacity {
                ids = PacketIDPool(capacity: Int(receiveMaximum))
            }
            if case .subscriber(let filter) = spec.role {
                phase = .subscribing
                let subscribe = MQTTPacket.subscribe(SubscribePacket(
                    packetID: 1, subscriptions: [.init(filter: filter, options: .init(qos: settings.qos))]))
                var out = context.channel.allocator.buffer(capacity: subscribe.encodedSize(version: settings.version))
                subscribe.write(version: settings.version, to: &out)
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            } else {
                if settings.sparkplug, case .publisher(let topic, _) = spec.role { sendBirth(forData: topic, context: context) }
                phase = .ready
                ready.succeed()
            }
        case (.subscribing, .suback(let suback)):
            if let refused = suback.reasonCodes.first(where: { $0.isFailure }) {
                ready.fail(BenchClientError.subscriptionRefused(refused))
                phase = .closed
                context.close(promise: nil)
                return
            }
            phase = .ready
            ready.succeed()
        case (_, .disconnect(let disconnect)):
            throw BenchClientError.protocolViolation("DISCONNECT from broker: \(disconnect.reasonCode)")
        default:
            throw BenchClientError.protocolViolation("unexpected \(packet.type)")
        }
    }

    /// The edge node's NBIRTH, QoS 0 like the NDATA a plain publisher would send first.
    private func sendBirth(forData topic: String, context: ChannelHandlerContext) {
        let birth = MQTTPacket.publish(PublishPacket(
            topic: SparkplugBenchPayload.birthTopic(forData: topic), payload: SparkplugBenchPayload.birth(), qos: .atMostOnce, packetID: 0))
        var out = context.channel.allocator.buffer(capacity: birth.encodedSize(version: settings.version))
        birth.write(version: settings.version, to: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    private func appendAck(_ type: PacketType, _ id: UInt16, context: ChannelHandlerContext?) {
        guard let allocator = self.context?.channel.allocator else { return }
        var out = pendingOutput ?? allocator.buffer(capacity: 256)
        pendingOutput = nil
        BenchWire.writeAck(type, packetID: id, to: &out)
        pendingOutput = out
    }

    private func flushPending(context: ChannelHandlerContext) {
        guard let output = pendingOutput else { return }
        pendingOutput = nil
        context.writeAndFlush(wrapOutboundOut(output), promise: nil)
    }

    // MARK: - Publishing

    func startPublishing(schedule: PublishSchedule) {
        guard isPublisher, phase == .ready else { return }
        self.schedule = schedule
        publishing = true
    }

    /// Writes what the schedule says is due (or, unpaced, what the connection accepts), bounded
    /// by the in-flight window, as one buffer and one flush.
    func pump(now: UInt64) {
        guard publishing, let context, let template, let schedule, let window = state.window else { return }
        guard now < window.measureEnd else {
            publishing = false
            return
        }
        guard context.channel.isWritable else { return }
        var count = schedule.due(at: now, sent: sentCount)
        count = min(count, max(1, settings.unpacedBurstBytes / template.size))
        if settings.qos != .atMostOnce { count = min(count, ids.available) }
        if let maxBacklog = settings.maxBacklog {
            count = min(count, (maxBacklog - state.backlog.backlog) / max(settings.deliveriesPerMessage, 1))
        }
        guard count > 0 else { return }
        var out = context.channel.allocator.buffer(capacity: count * template.size)
        var written = 0
        while written < count {
            var id: UInt16 = 0
            if settings.qos != .atMostOnce {
                guard let next = ids.acquire() else { break }
                id = next
            }
            // seq 0 was the NBIRTH's; NDATA counts on from 1, wrapping at 256 as the spec says.
            template.write(to: &out, packetID: id, timestamp: now, seq: UInt8(truncatingIfNeeded: sentCount + written + 1))
            written += 1
        }
        sentCount += written
        if settings.maxBacklog != nil { state.backlog.expected.add(written * settings.deliveriesPerMessage, ordering: .relaxed) }
        state.stats.sent += written
        if window.contains(now) { state.stats.sentInWindow += written }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func ping() {
        guard phase == .ready, let context else { return }
        var out = context.channel.allocator.buffer(capacity: 2)
        BenchWire.writePingRequest(to: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func disconnect() {
        publishing = false
        guard phase != .closed, let context else { return }
        phase = .closed
        let packet = MQTTPacket.disconnect(DisconnectPacket())
        var out = context.channel.allocator.buffer(capacity: 4)
        packet.write(version: settings.version, to: &out)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
    }
}
