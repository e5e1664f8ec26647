import Benchmark
import MQTTCodec
import NIOCore

/// PUBLISH decode and encode, the per-message work of every broker hop. Allocation counts are
/// the committed contract (Thresholds/); time is printed for information only.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    for version in [ProtocolVersion.v3_1_1, .v5] {
        let fixture = PublishFixture(version: version)
        // Names are file names of the committed thresholds: letters, digits and underscores only.
        let suffix = version == .v5 ? "MQTT5" : "MQTT311"

        Benchmark("PUBLISH_decode_QoS1_64B_\(suffix)") { benchmark in
            for _ in benchmark.scaledIterations {
                var decoder = MQTTPacketDecoder(version: version)
                var input = fixture.wire
                blackHole(try decoder.decodePacket(buffer: &input))
            }
        }

        Benchmark("PUBLISH_encode_QoS1_64B_\(suffix)") { benchmark in
            // One output buffer, reused: what a connection's write path does per burst.
            var output = ByteBuffer()
            output.reserveCapacity(fixture.wire.readableBytes)
            for _ in benchmark.scaledIterations {
                output.clear()
                fixture.packet.write(version: version, to: &output)
                blackHole(output.readableBytes)
            }
        }

        Benchmark("PUBLISH_fanout_header_QoS1_\(suffix)") { benchmark in
            // Per-subscriber header in front of the shared payload slice.
            var output = ByteBuffer()
            output.reserveCapacity(64)
            guard case .publish(let publish) = fixture.packet else { return }
            for _ in benchmark.scaledIterations {
                output.clear()
                publish.writeHeader(version: version, to: &output)
                blackHole(output.readableBytes)
            }
        }
    }
}

struct PublishFixture {
    let packet: MQTTPacket
    let wire: ByteBuffer

    init(version: ProtocolVersion) {
        var payload = ByteBuffer()
        payload.writeRepeatingByte(0x2A, count: 64)
        let publish = PublishPacket(topic: "plant/line7/cell3/temperature", payload: payload, qos: .atLeastOnce, packetID: 4711)
        packet = .publish(publish)
        var wire = ByteBuffer()
        packet.write(version: version, to: &wire)
        self.wire = wire
    }
}
