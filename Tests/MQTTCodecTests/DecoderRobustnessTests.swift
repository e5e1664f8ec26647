import MQTTCodec
import NIOCore
import Testing

// Hostile bytes: truncated fields, mutated packets and random garbage must end in an
// MQTTDecodeError or a packet — never a crash — and whatever decodes must survive re-encoding.

/// SplitMix64: deterministic, so a failure reproduces.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private struct Sample {
    var packet: MQTTPacket
    var version: ProtocolVersion
    var sender: MQTTPacketDecoder.Sender
}

private func corpus() -> [Sample] {
    var samples: [Sample] = []
    let plainWill = ConnectPacket.Will(topic: "w/x", payload: buffer("bye"), qos: .exactlyOnce, retain: true)
    var will = plainWill
    will.properties.contentType = "c"
    will.properties.correlationData = buffer([1, 2])
    var connectProps = ConnectProperties()
    connectProps.receiveMaximum = 5
    connectProps.authenticationMethod = "m"
    connectProps.authenticationData = buffer([7])
    connectProps.userProperties = [UserProperty(name: "n", value: "v")]
    var publishProps = PublishProperties()
    publishProps.topicAlias = 2
    publishProps.responseTopic = "r"
    publishProps.messageExpiryInterval = 9
    var serverPublishProps = publishProps
    serverPublishProps.subscriptionIdentifiers = [5, 70_000]
    var connackProps = ConnackProperties()
    connackProps.maximumQoS = .atLeastOnce
    connackProps.assignedClientIdentifier = "id"
    connackProps.serverKeepAlive = 30
    var authProps = AuthProperties()
    authProps.authenticationMethod = "m"
    authProps.authenticationData = buffer([1])
    for version in allVersions {
        let v5 = version == .v5
        func add(_ p: MQTTPacket, _ s: MQTTPacketDecoder.Sender = .client) { samples.append(Sample(packet: p, version: version, sender: s)) }
        add(.connect(ConnectPacket(protocolVersion: version, clientID: "client", will: v5 ? will : plainWill, username: "u", password: buffer("pw"),
                                   properties: v5 ? connectProps : .init())))
        add(.connect(ConnectPacket(protocolVersion: version, clientID: "")))
        add(.connack(ConnackPacket(sessionPresent: version != .v3_1, properties: v5 ? connackProps : .init())), .server)
        add(.publish(PublishPacket(topic: "a/b", payload: buffer("payload"), qos: .exactlyOnce, packetID: 3, properties: v5 ? publishProps : .init())))
        add(.publish(PublishPacket(topic: "a/b", payload: buffer("p"), properties: v5 ? serverPublishProps : .init())), .server)
        add(.puback(PublishAckPacket(packetID: 1, reasonCode: v5 ? .quotaExceeded : .success, properties: v5 ? .init(reasonString: "q") : .init())))
        add(.pubrel(PublishAckPacket(packetID: 1)))
        add(.subscribe(SubscribePacket(packetID: 2, subscriptions: [
            .init(filter: "a/+/c", options: .init(qos: .atLeastOnce, retainHandling: v5 ? .sendIfNew : .sendOnSubscribe)),
            .init(filter: "$share/g/#", options: .init(qos: .exactlyOnce)),
        ], properties: v5 ? .init(subscriptionIdentifier: 4) : .init())))
        add(.suback(SubackPacket(packetID: 2, reasonCodes: [.grantedQoS1, .unspecifiedError])), .server)
        add(.unsubscribe(UnsubscribePacket(packetID: 3, filters: ["a", "b/#"])))
        add(.unsuback(UnsubackPacket(packetID: 3, reasonCodes: v5 ? [.success, .noSubscriptionExisted] : [])), .server)
        add(.pingreq)
        add(.disconnect(DisconnectPacket(reasonCode: v5 ? .disconnectWithWillMessage : .normalDisconnection)))
        if v5 {
            add(.auth(AuthPacket(reasonCode: .continueAuthentication, properties: authProps)))
            var d = DisconnectProperties(reasonString: "r")
            d.serverReference = "s"
            add(.disconnect(DisconnectPacket(reasonCode: .serverMoved, properties: d)), .server)
        }
    }
    return samples
}

private func makeDecoder(_ sample: Sample) -> MQTTPacketDecoder {
    if case .connect = sample.packet { return MQTTPacketDecoder() }
    return MQTTPacketDecoder(version: sample.version, sender: sample.sender)
}

/// Decodes what it can from `input`; for every packet decoded, checks that its encoding decodes
/// back to the same packet.
private func decodeAndCheckStability(_ input: ByteBuffer, decoder: MQTTPacketDecoder, sourceLocation: SourceLocation = #_sourceLocation) {
    var d = decoder
    var input = input
    while true {
        let versionBefore = d.version
        let senderBefore = d.sender
        let packet: MQTTPacket?
        do {
            packet = try d.decodePacket(buffer: &input)
        } catch {
            return
        }
        guard let packet else { return }
        let version: ProtocolVersion
        var again: MQTTPacketDecoder
        if case .connect(let c) = packet {
            version = c.protocolVersion
            again = MQTTPacketDecoder(version: versionBefore, sender: senderBefore)
        } else {
            version = versionBefore ?? .v5
            again = MQTTPacketDecoder(version: versionBefore, sender: senderBefore)
        }
        let wire = encode(packet, version)
        #expect(wire.readableBytes == packet.encodedSize(version: version), sourceLocation: sourceLocation)
        var copy = wire
        do {
            let redecoded = try again.decodePacket(buffer: &copy)
            #expect(redecoded == packet, "\(packet) re-encoded as \(bytes(of: wire))", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(packet) decoded but its encoding \(bytes(of: wire)) does not: \(error)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Decoder robustness")
struct DecoderRobustnessTests {
    @Test func corpusRoundTrips() {
        // The fuzz corpus itself must be valid, or mutations prove little.
        for sample in corpus() {
            var d = makeDecoder(sample)
            do {
                #expect(try decodeOne(encode(sample.packet, sample.version), decoder: &d) == sample.packet)
            } catch {
                Issue.record("\(sample.version) \(sample.packet.type): \(error)")
            }
        }
    }

    @Test func everyTruncationOfAConnectIsMalformed() {
        // Every CONNECT field is mandatory or length-prefixed, so any shorter body is an error.
        for sample in corpus() {
            guard case .connect = sample.packet else { continue }
            let wire = bytes(of: encode(sample.packet, sample.version))
            var header = buffer(wire)
            header.moveReaderIndex(forwardBy: 1)
            let length = (try? VariableByteInteger.read(from: &header)) ?? 0
            let body = Array(wire.suffix(length))
            for cut in 0..<body.count {
                let error = decodeError(rawPacket(0x10, Array(body.prefix(cut))), version: nil, sender: nil)
                #expect(error?.kind == .malformed, "\(sample.version) cut at \(cut): \(String(describing: error))")
            }
        }
    }

    @Test func truncatedBodiesNeverCrash() {
        for sample in corpus() {
            let wire = bytes(of: encode(sample.packet, sample.version))
            var header = buffer(wire)
            header.moveReaderIndex(forwardBy: 1)
            let length = (try? VariableByteInteger.read(from: &header)) ?? 0
            let body = Array(wire.suffix(length))
            for cut in 0..<body.count {
                decodeAndCheckStability(buffer(rawPacket(wire[0], Array(body.prefix(cut)))), decoder: makeDecoder(sample))
            }
        }
    }

    @Test func mutatedPacketsNeverCrashAndStayStable() {
        var rng = SeededGenerator(state: 0x4D51_5454)
        let samples = corpus()
        for _ in 0..<20_000 {
            let sample = samples.randomElement(using: &rng)!
            var wire = bytes(of: encode(sample.packet, sample.version))
            let mutations = Int.random(in: 1...3, using: &rng)
            for _ in 0..<mutations {
                let index = Int.random(in: 0..<wire.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: wire[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                case 1: wire[index] = UInt8.random(in: 0...255, using: &rng)
                case 2: wire.insert(UInt8.random(in: 0...255, using: &rng), at: index)
                case 3: if wire.count > 2 { wire.remove(at: index) }
                default: wire[index] = [0x00, 0x7F, 0x80, 0xFF].randomElement(using: &rng)!
                }
            }
            // Half the time keep the framing consistent so the body parsers see the damage.
            if Bool.random(using: &rng), wire.count >= 2 {
                var header = buffer(wire)
                header.moveReaderIndex(forwardBy: 1)
                if let length = try? VariableByteInteger.read(from: &header) {
                    let headerSize = 1 + VariableByteInteger.size(of: length)
                    wire = rawPacket(wire[0], Array(wire.dropFirst(min(headerSize, wire.count))))
                }
            }
            decodeAndCheckStability(buffer(wire), decoder: makeDecoder(sample))
        }
    }

    @Test func randomGarbageNeverCrashes() {
        var rng = SeededGenerator(state: 0xB45710)
        let decoders: [MQTTPacketDecoder] = [MQTTPacketDecoder()] + allVersions.flatMap { v in
            [MQTTPacketDecoder(version: v, sender: .client), MQTTPacketDecoder(version: v, sender: .server), MQTTPacketDecoder(version: v)]
        }
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...48, using: &rng)
            var garbage = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // A plausible first byte and a short length make the body parsers run more often.
            if garbage.count >= 2 {
                garbage[0] = UInt8.random(in: 1...15, using: &rng) << 4 | [0, 2, 0].randomElement(using: &rng)!
                garbage[1] = UInt8(garbage.count - 2)
            }
            decodeAndCheckStability(buffer(garbage), decoder: decoders.randomElement(using: &rng)!)
        }
    }
}
