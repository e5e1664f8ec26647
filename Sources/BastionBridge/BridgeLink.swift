import DequeModule
import Logging
import MQTTCodec
import NIOCore
import NIOPosix
import NIOSSL

/// One bridge: a client of this broker (its own persistent session, reached over an in-process
/// socket pair) and a client of the remote broker, with the forwarding between them.
///
/// QoS 1 messages are stored by the local session before their publisher is acknowledged, and
/// the local PUBACK that lets the broker forget one goes only after the remote's PUBACK, so a
/// cut link or a crash loses nothing: the session delivers again what was not acknowledged, in
/// order. The local session's Receive Maximum bounds what the bridge holds in memory.
///
/// Everything runs on `loop`.
public final class BridgeLink: @unchecked Sendable {
    /// Opens a connection to this broker for the bridge's local session and returns the
    /// bridge's end (a connected socket). The broker serves the other end like any client.
    public typealias LocalConnector = @Sendable () throws -> CInt

    public let settings: BridgeSettings
    public let status: BridgeStatus
    let loop: any EventLoop
    private let logger: Logger
    private let events: @Sendable (BridgeEvent) -> Void
    private let openLocal: LocalConnector
    private let tlsContext: NIOSSLContext?

    private var stopped = false
    private var local: MQTTClientHandler?
    private var localReady = false
    private var remote: MQTTClientHandler?
    private var remoteReady = false
    /// The remote being tried or in use (index into `settings.remotes`).
    private var remoteIndex = 0
    private var attemptStartedAt = NIODeadline.now()
    private var lastFailure = "not connected yet"
    private var disconnectReason: String?
    private var backoff = ReconnectBackoff()
    private var forward = ForwardQueue()
    private var limiter: ByteRateLimiter?
    private var resumeScheduled = false
    private var lastRemoteRead = NIODeadline.now()
    private var lastPing = NIODeadline.now()
    private var ticker: RepeatedTask?
    /// What the remote's CONNACK allows.
    private var remoteReceiveMaximum = 65535
    private var remoteMaximumPacketSize = Int.max
    private var remoteMaximumQoS = QoS.atLeastOnce
    private var remoteRetainAvailable = true
    /// `in` traffic: local packet id → the remote packet id acknowledged once the broker has it.
    private var inboundAwaiting: [UInt16: UInt16] = [:]
    private var lastLocalPacketID: UInt16 = 0
    private var localReceiveMaximum = 65535
    /// The broker may impose a keep alive on the local session (its maximum); 0 when it does not.
    private var localKeepAlive: Int64 = 0
    private var lastLocalPing = NIODeadline.now()
    private var remoteWarnedRefusal = false
    /// 3.1.1 has no No Local: what the bridge sends on a topic it also brings in comes back from
    /// the remote. Recently sent (topic, payload) fingerprints let it recognise those echoes.
    private let guardsEchoes: Bool
    private var echoes: [Int: Int] = [:]
    private var echoOrder = Deque<Int>()
    /// Completed once the local session's subscriptions are in place for the first time.
    private var subscribed: EventLoopPromise<Void>?
    private var awaitingSubacks: Set<UInt16> = []

    public init(
        settings: BridgeSettings, loop: any EventLoop, logger: Logger, openLocal: @escaping LocalConnector,
        events: @escaping @Sendable (BridgeEvent) -> Void
    ) throws {
        self.settings = settings
        self.status = BridgeStatus(name: settings.name)
        self.loop = loop
        var logger = logger
        logger[metadataKey: "bridge"] = "\(settings.name)"
        self.logger = logger
        self.openLocal = openLocal
        self.events = events
        self.tlsContext = settings.remotes.contains(where: \.tls) ? try Self.makeTLSContext(settings.tls) : nil
        self.guardsEchoes = settings.protocolVersion != .v5 && !settings.inTopics.isEmpty
        if let rate = settings.maximumBytesPerSecond {
            limiter = ByteRateLimiter(bytesPerSecond: rate, nowNanoseconds: NIODeadline.now().uptimeNanoseconds)
        }
    }

    /// TLS 1.2 or later, the server's certificate checked against `ca` (or the system's roots)
    /// and its name; the client certificate when configured.
    static func makeTLSContext(_ tls: BridgeSettings.TLS) throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv12
        config.certificateVerification = .fullVerification
        if let ca = tls.caFile { config.trustRoots = .file(ca) }
        if let cert = tls.certificateFile {
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
        }
        if let key = tls.keyFile { config.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) }
        return try NIOSSLContext(configuration: config)
    }

    /// Starts both connections. The future completes once the local session is subscribed: from
    /// then on every matching local publish is kept for the remote.
    @discardableResult
    public func start() -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        loop.execute { [self] in
            subscribed = promise
            ticker = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in tick() }
            connectLocal()
            connectRemote(0)
        }
        return promise.futureResult
    }

    private func subscriptionSettled(_ packetID: UInt16?) {
        if let packetID { awaitingSubacks.remove(packetID) }
        guard awaitingSubacks.isEmpty, let promise = subscribed else { return }
        subscribed = nil
        promise.succeed()
    }

    /// Ends both connections; the local session keeps what was not forwarded.
    public func stop() -> EventLoopFuture<Void> {
        loop.submit { [self] in
            stopped = true
            ticker?.cancel()
            subscribed?.succeed()
            subscribed = nil
            if let remote {
                if remoteReady { remote.write(.disconnect(DisconnectPacket())) }
                remote.close()
            }
            if let local {
                local.write(.disconnect(DisconnectPacket()))
                local.close()
            }
        }
    }

    // MARK: Connecting

    private func connectLocal() {
        guard !stopped else { return }
        let descriptor: CInt
        do {
            descriptor = try openLocal()
        } catch {
            logger.error("bridge cannot open its local session: \(error)")
            return retryLocal()
        }
        ClientBootstrap(group: loop)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        MQTTClientHandler(side: .local, version: .v5, maximumPacketSize: 256 * 1024 * 1024, link: self))
                }
            }
            .withConnectedSocket(descriptor)
            .whenFailure { [self] error in
                logger.error("bridge cannot attach its local session: \(error)")
                retryLocal()
            }
    }

    private func retryLocal() {
        guard !stopped else { return }
        loop.scheduleTask(in: .seconds(1)) { [self] in connectLocal() }
    }

    private func connectRemote(_ index: Int) {
        guard !stopped, remote == nil else { return }
        remoteIndex = index
        attemptStartedAt = .now()
        let target = settings.remotes[index]
        let tlsContext = self.tlsContext
        ClientBootstrap(group: loop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if target.tls, let tlsContext {
                        // SNI takes names only; an IP address is checked against the certificate's IP SANs.
                        let isIP = (try? SocketAddress(ipAddress: target.host, port: 0)) != nil
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tlsContext, serverHostname: isIP ? nil : target.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        MQTTClientHandler(side: .remote, version: settings.protocolVersion, maximumPacketSize: 16 * 1024 * 1024, link: self))
                }
            }
            .connect(host: target.host, port: target.port)
            .whenFailure { [self] error in
                attemptFailed("\(error)")
            }
    }

    /// The attempt on the current remote failed: the next remote, or after a full round the
    /// back-off.
    private func attemptFailed(_ reason: String) {
        lastFailure = reason
        logger.info("bridge connection attempt failed", metadata: [
            "remote": "\(settings.remotes[remoteIndex])", "reason": "\(reason)",
        ])
        guard !stopped else { return }
        if remoteIndex + 1 < settings.remotes.count { return connectRemote(remoteIndex + 1) }
        let delay = backoff.next()
        events(.unreachable(reason: reason, retryInMilliseconds: delay))
        loop.scheduleTask(in: .milliseconds(Int64(delay))) { [self] in connectRemote(0) }
    }

    // MARK: Channel events (from the handlers)

    func channelActive(_ handler: MQTTClientHandler) {
        switch handler.side {
        case .local:
            local = handler
            var properties = ConnectProperties()
            // The session outlives every connection: messages wait in it while the remote is away.
            properties.sessionExpiryInterval = 0xFFFF_FFFF
            properties.receiveMaximum = UInt16(clamping: settings.maximumInflight)
            handler.write(.connect(ConnectPacket(
                protocolVersion: .v5, cleanStart: false, keepAlive: 0, clientID: settings.localClientID, properties: properties)))
            handler.flush()
        case .remote:
            remote = handler
            lastRemoteRead = .now()
            let persistent = !settings.inTopics.isEmpty
            var properties = ConnectProperties()
            if settings.protocolVersion == .v5 {
                if persistent { properties.sessionExpiryInterval = 0xFFFF_FFFF }
                properties.receiveMaximum = UInt16(clamping: settings.maximumInflight)
            }
            handler.write(.connect(ConnectPacket(
                protocolVersion: settings.protocolVersion, cleanStart: !persistent, keepAlive: settings.keepAlive,
                clientID: settings.clientID, username: settings.username, password: settings.password.map { ByteBuffer(string: $0) },
                properties: properties)))
            handler.flush()
        }
    }

    func channelClosed(_ handler: MQTTClientHandler) {
        switch handler.side {
        case .local:
            guard local === handler else { return }
            local = nil
            localReady = false
            forward.removeAll()
            inboundAwaiting.removeAll()
            status.setPending(0)
            if !stopped { logger.warning("bridge's local session closed; reattaching") }
            retryLocal()
        case .remote:
            guard remote === handler else { return }
            remote = nil
            let wasReady = remoteReady
            remoteReady = false
            forward.linkLost()
            inboundAwaiting.removeAll()
            status.setPending(forward.count)
            guard wasReady else { return attemptFailed(disconnectReason ?? lastFailure) }
            let remoteName = settings.remotes[remoteIndex].description
            status.setConnected(nil)
            let reason = disconnectReason ?? "connection lost"
            disconnectReason = nil
            logger.warning("bridge disconnected", metadata: ["remote": "\(remoteName)", "reason": "\(reason)"])
            events(.disconnected(remote: remoteName, reason: reason))
            guard !stopped else { return }
            let delay = backoff.next()
            loop.scheduleTask(in: .milliseconds(Int64(delay))) { [self] in connectRemote(0) }
        }
    }

    func protocolError(_ handler: MQTTClientHandler, _ reason: String) {
        if handler.side == .remote { disconnectReason = reason }
        logger.warning("bridge connection error", metadata: ["side": "\(handler.side)", "reason": "\(reason)"])
    }

    func readComplete(_ handler: MQTTClientHandler) {
        // What one side's burst produced for the other leaves in one write.
        switch handler.side {
        case .local: remote?.flush()
        case .remote: local?.flush()
        }
    }

    func becameWritable(_ handler: MQTTClientHandler) {
        guard handler.side == .remote else { return }
        pump()
        handler.flush()
    }

    func received(_ packet: MQTTPacket, from handler: MQTTClientHandler) {
        switch handler.side {
        case .local: receivedFromLocal(packet)
        case .remote:
            lastRemoteRead = .now()
            receivedFromRemote(packet, handler)
        }
    }

    // MARK: The local session

    private func receivedFromLocal(_ packet: MQTTPacket) {
        guard let local else { return }
        switch packet {
        case .connack(let connack):
            guard !connack.reasonCode.isFailure else {
                logger.error("the broker refused the bridge's session: \(connack.reasonCode.name)")
                return local.close()
            }
            localReady = true
            localReceiveMaximum = Int(connack.properties.receiveMaximum ?? 65535)
            localKeepAlive = Int64(connack.properties.serverKeepAlive ?? 0) * 1_000_000_000
            lastLocalPing = .now()
            // One SUBSCRIBE per topic entry, so its Subscription Identifier names the entry a
            // delivery belongs to. No Local keeps what the bridge brings in from going back out;
            // retained messages are sent once, when the subscription is new.
            for (i, topic) in settings.topics.enumerated() where topic.direction.sendsOut {
                awaitingSubacks.insert(UInt16(i + 1))
                let options = SubscribePacket.Options(qos: topic.qos, noLocal: true, retainAsPublished: true, retainHandling: .sendIfNew)
                local.write(.subscribe(SubscribePacket(
                    packetID: UInt16(i + 1), subscriptions: [.init(filter: topic.local, options: options)],
                    properties: SubscribeProperties(subscriptionIdentifier: UInt32(i + 1)))))
            }
            local.flush()
            subscriptionSettled(nil)
        case .suback(let suback):
            defer { subscriptionSettled(suback.packetID) }
            let index = Int(suback.packetID) - 1
            guard settings.topics.indices.contains(index), let code = suback.reasonCodes.first, code.isFailure else { return }
            let filter = settings.topics[index].local
            logger.error("the broker refused the bridge's subscription", metadata: ["filter": "\(filter)", "reason": "\(code.name)"])
            events(.subscriptionRefused(filter: filter, reason: code.name))
        case .publish(let publish):
            outbound(publish)
        case .puback(let ack):
            guard let remotePacketID = inboundAwaiting.removeValue(forKey: ack.packetID) else { return }
            remote?.write(.puback(PublishAckPacket(packetID: remotePacketID)))
        case .disconnect(let disconnect):
            logger.warning("the broker ended the bridge's session: \(disconnect.reasonCode.name)")
        default:
            break
        }
    }

    /// The topic entry a delivery came through: named by its Subscription Identifier, or the
    /// first entry whose filter matches.
    private func mapping(for publish: PublishPacket) -> String? {
        let topics = settings.topics
        for id in publish.properties.subscriptionIdentifiers {
            let index = Int(id) - 1
            if topics.indices.contains(index), let mapped = topics[index].remoteTopic(forLocal: publish.topic) { return mapped }
        }
        for topic in topics where topic.direction.sendsOut {
            if let mapped = topic.remoteTopic(forLocal: publish.topic) { return mapped }
        }
        return nil
    }

    private func outbound(_ publish: PublishPacket) {
        guard let remoteTopic = mapping(for: publish) else {
            // Not ours to forward (a subscription left from an earlier configuration).
            return acknowledgeLocal(publish)
        }
        var out = PublishPacket(topic: remoteTopic, payload: publish.payload, qos: publish.qos, retain: publish.retain && remoteRetainAvailable)
        if settings.protocolVersion == .v5 {
            out.properties = publish.properties
            out.properties.subscriptionIdentifiers = []
            out.properties.topicAlias = nil
        }
        let size = remoteTopic.utf8.count + publish.payload.readableBytes
        if guardsEchoes, settings.inTopics.contains(where: { $0.localTopic(forRemote: remoteTopic) != nil }) {
            rememberSent(remoteTopic, publish.payload)
        }
        guard publish.qos != .atMostOnce, remoteMaximumQoS != .atMostOnce else {
            out.qos = .atMostOnce
            sendAtMostOnce(out, size: size)
            return acknowledgeLocal(publish)
        }
        out.qos = .atLeastOnce
        forward.append(localPacketID: publish.packetID, publish: out, size: size)
        pump()
    }

    private static func fingerprint(_ topic: String, _ payload: ByteBuffer) -> Int {
        var hasher = Hasher()
        hasher.combine(topic)
        hasher.combine(payload)
        return hasher.finalize()
    }

    private func rememberSent(_ topic: String, _ payload: ByteBuffer) {
        let key = Self.fingerprint(topic, payload)
        echoes[key, default: 0] += 1
        echoOrder.append(key)
        // Bounded: an echo comes back within moments or not at all.
        while echoOrder.count > 4096, let old = echoOrder.popFirst() {
            if let n = echoes[old], n > 1 { echoes[old] = n - 1 } else { echoes[old] = nil }
        }
    }

    /// Whether this remote message is the echo of one the bridge sent (consumed once).
    private func isEcho(_ publish: PublishPacket) -> Bool {
        guard guardsEchoes else { return false }
        let key = Self.fingerprint(publish.topic, publish.payload)
        guard let n = echoes[key] else { return false }
        echoes[key] = n > 1 ? n - 1 : nil
        if let index = echoOrder.firstIndex(of: key) { echoOrder.remove(at: index) }
        return true
    }

    private func acknowledgeLocal(_ publish: PublishPacket) {
        guard publish.qos != .atMostOnce else { return }
        local?.write(.puback(PublishAckPacket(packetID: publish.packetID)))
    }

    private func sendAtMostOnce(_ publish: PublishPacket, size: Int) {
        guard remoteReady, let remote, remote.isWritable else { return status.addDropped(.notConnected) }
        guard fits(publish) else { return status.addDropped(.tooLarge) }
        if limiter != nil, !limiter!.take(size, nowNanoseconds: NIODeadline.now().uptimeNanoseconds) {
            return status.addDropped(.rateLimited)
        }
        remote.write(.publish(publish))
        status.addForwarded()
    }

    private func fits(_ publish: PublishPacket) -> Bool {
        remoteMaximumPacketSize == Int.max || MQTTPacket.publish(publish).encodedSize(version: settings.protocolVersion) <= remoteMaximumPacketSize
    }

    /// Sends queued QoS 1 messages while the remote's window, its socket and the byte rate allow.
    private func pump() {
        defer { status.setPending(forward.count) }
        guard remoteReady, let remote else { return }
        let window = min(settings.maximumInflight, remoteReceiveMaximum)
        while remote.isWritable, let next = forward.peek(window: window) {
            guard fits(next.publish) else {
                if let localPacketID = forward.discardFront() {
                    local?.write(.puback(PublishAckPacket(packetID: localPacketID)))
                }
                status.addDropped(.tooLarge)
                continue
            }
            if limiter != nil {
                let now = NIODeadline.now().uptimeNanoseconds
                guard limiter!.take(next.size, nowNanoseconds: now) else {
                    scheduleResume(afterNanoseconds: limiter!.wait(for: next.size, nowNanoseconds: now))
                    break
                }
            }
            guard let publish = forward.send() else { break }
            remote.write(.publish(publish))
        }
    }

    private func scheduleResume(afterNanoseconds delay: UInt64) {
        guard !resumeScheduled else { return }
        resumeScheduled = true
        loop.scheduleTask(in: .nanoseconds(Int64(min(delay, 1_000_000_000)))) { [self] in
            resumeScheduled = false
            pump()
            remote?.flush()
            local?.flush()
        }
    }

    // MARK: The remote broker

    private func receivedFromRemote(_ packet: MQTTPacket, _ remote: MQTTClientHandler) {
        switch packet {
        case .connack(let connack):
            guard !connack.reasonCode.isFailure else {
                let reason = connack.reasonCode.name
                let remoteName = settings.remotes[remoteIndex].description
                logger.error("remote broker refused the bridge", metadata: ["remote": "\(remoteName)", "reason": "\(reason)"])
                events(.refused(remote: remoteName, reason: reason))
                disconnectReason = "refused: \(reason)"
                return remote.close()
            }
            connected(connack, remote)
        case .puback(let ack):
            guard let localPacketID = forward.acknowledged(ack.packetID) else { return }
            if ack.reasonCode.isFailure {
                // The remote will never take this message (0x87 not authorised, say): forwarding it
                // again would not help, so it is counted and released like a delivered one.
                status.addDropped(.refusedByRemote)
                if !remoteWarnedRefusal {
                    remoteWarnedRefusal = true
                    logger.warning("remote broker refused a bridged message", metadata: ["reason": "\(ack.reasonCode.name)"])
                }
            } else {
                status.addForwarded()
            }
            local?.write(.puback(PublishAckPacket(packetID: localPacketID)))
            pump()
        case .publish(let publish):
            inbound(publish, remote)
        case .pubrel(let release):
            remote.write(.pubcomp(PublishAckPacket(packetID: release.packetID)))
        case .suback(let suback):
            for code in suback.reasonCodes where code.isFailure {
                logger.error("remote broker refused a bridge subscription", metadata: ["reason": "\(code.name)"])
            }
        case .disconnect(let disconnect):
            disconnectReason = "remote sent DISCONNECT \(disconnect.reasonCode.name)"
        default:
            break
        }
    }

    private func connected(_ connack: ConnackPacket, _ remote: MQTTClientHandler) {
        remoteReady = true
        backoff.reset()
        remoteReceiveMaximum = Int(connack.properties.receiveMaximum ?? 65535)
        remoteMaximumPacketSize = connack.properties.maximumPacketSize.map(Int.init) ?? Int.max
        remoteMaximumQoS = connack.properties.maximumQoS ?? .exactlyOnce
        remoteRetainAvailable = connack.properties.retainAvailable ?? true
        lastPing = .now()
        let remoteName = settings.remotes[remoteIndex].description
        status.setConnected(remoteIndex)
        logger.notice("bridge connected", metadata: ["remote": "\(remoteName)"])
        events(.connected(remote: remoteName))
        let inTopics = settings.inTopics
        if !inTopics.isEmpty {
            let subscriptions = inTopics.map { topic in
                SubscribePacket.Subscription(filter: topic.remote, options: .init(qos: topic.qos, noLocal: true))
            }
            remote.write(.subscribe(SubscribePacket(packetID: 1, subscriptions: subscriptions)))
        }
        pump()
        remote.flush()
    }

    /// A PUBLISH from the remote: with `upward_only`, or when no `in` topic admits it, it is
    /// acknowledged and dropped — nothing from the remote reaches a local subscriber.
    private func inbound(_ publish: PublishPacket, _ remote: MQTTClientHandler) {
        if isEcho(publish) { return acknowledgeRemote(publish, remote) }
        let admitted = settings.upwardOnly ? nil : settings.inTopics.lazy.compactMap { topic in
            topic.localTopic(forRemote: publish.topic).map { (topic, $0) }
        }.first
        guard let (topic, localTopic) = admitted, localReady, let local else {
            status.addDropped(.fromRemote)
            return acknowledgeRemote(publish, remote)
        }
        var copy = PublishPacket(topic: localTopic, payload: publish.payload, qos: min(publish.qos, topic.qos), retain: publish.retain)
        if settings.protocolVersion == .v5 {
            copy.properties = publish.properties
            copy.properties.subscriptionIdentifiers = []
            copy.properties.topicAlias = nil
        }
        status.addReceived()
        guard copy.qos != .atMostOnce, publish.qos == .atLeastOnce, inboundAwaiting.count < localReceiveMaximum,
              let packetID = nextLocalPacketID()
        else {
            copy.qos = .atMostOnce
            local.write(.publish(copy))
            return acknowledgeRemote(publish, remote)
        }
        // At least once: the remote's PUBACK waits for the broker's.
        copy.packetID = packetID
        inboundAwaiting[packetID] = publish.packetID
        local.write(.publish(copy))
    }

    private func acknowledgeRemote(_ publish: PublishPacket, _ remote: MQTTClientHandler) {
        switch publish.qos {
        case .atMostOnce: break
        case .atLeastOnce: remote.write(.puback(PublishAckPacket(packetID: publish.packetID)))
        case .exactlyOnce: remote.write(.pubrec(PublishAckPacket(packetID: publish.packetID)))
        }
    }

    private func nextLocalPacketID() -> UInt16? {
        PacketIDs.next(after: &lastLocalPacketID, inUse: inboundAwaiting)
    }

    // MARK: Timers

    /// Once a second: the CONNACK deadline, keep alive towards the remote, and a resume for a
    /// rate-limited queue.
    private func tick() {
        let now = NIODeadline.now()
        if let remote, !remoteReady, now - attemptStartedAt > settings.connectTimeout {
            disconnectReason = "no CONNACK within \(settings.connectTimeout.nanoseconds / 1_000_000_000) s"
            remote.close()
        }
        if let remote, remoteReady, settings.keepAlive > 0 {
            let keepAlive = Int64(settings.keepAlive) * 1_000_000_000
            if (now - lastRemoteRead).nanoseconds > keepAlive + keepAlive / 2 {
                disconnectReason = "remote silent for 1.5 × keep alive"
                remote.close()
            } else if (now - lastPing).nanoseconds >= keepAlive / 2 {
                lastPing = now
                remote.write(.pingreq)
                remote.flush()
            }
        }
        if let local, localReady, localKeepAlive > 0, (now - lastLocalPing).nanoseconds >= localKeepAlive / 2 {
            lastLocalPing = now
            local.write(.pingreq)
            local.flush()
        }
        if !forward.isEmpty {
            pump()
            remote?.flush()
            local?.flush()
        }
    }
}
