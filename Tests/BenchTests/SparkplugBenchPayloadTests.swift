@testable import BastionBench
import MQTTCodec
import NIOCore
import Sparkplug
import Testing

@Suite struct SparkplugBenchPayloadTests {
    /// The broker's inventory must see a well-behaved edge node: NBIRTH seq 0, then NDATA whose seq
    /// follows by one, wrapping at 256. A template that broke this would measure the anomaly path.
    @Test(arguments: [64, 200, 20_000])
    func ndataTemplateIsSparkplugWithARunningSeqAndTheSendTimeAtTheEnd(size: Int) throws {
        let topic = "spBv1.0/run/NDATA/e1"
        let template = PublishTemplate(topic: topic, qos: .atMostOnce, payloadSize: size, version: .v3_1_1, sparkplug: true)
        var inventory = SparkplugInventory()
        let birthTopic = try #require(edgeTopic(SparkplugBenchPayload.birthTopic(forData: topic)))
        let birth = Array(SparkplugBenchPayload.birth().readableBytesView)
        let birthObservation = try #require(try birth.withUnsafeBufferPointer {
            try SparkplugObservation.from(birthTopic, payload: $0, at: 1, byWill: false).get()
        })
        #expect(inventory.observe(birthObservation).isEmpty)

        let dataTopic = try #require(edgeTopic(topic))
        for n in 1...300 {
            var out = ByteBuffer()
            template.write(to: &out, packetID: 0, timestamp: UInt64(1000 + n), seq: UInt8(truncatingIfNeeded: n))
            var decoder = MQTTPacketDecoder(version: .v3_1_1)
            guard case .publish(let publish) = try decoder.decodePacket(buffer: &out) else {
                Issue.record("not a PUBLISH")
                return
            }
            let payload = Array(publish.payload.readableBytesView)
            #expect(payload.count == max(size, SparkplugBenchPayload.minimumSize))
            let decoded = try SparkplugB.Payload(serializedBytes: payload)
            #expect(decoded.seq == UInt64(n % 256))
            #expect(decoded.metrics.map(\.name) == ["temperature"])
            let observation = try #require(try payload.withUnsafeBufferPointer {
                try SparkplugObservation.from(dataTopic, payload: $0, at: 2, byWill: false).get()
            })
            #expect(inventory.observe(observation).isEmpty)

            var frame = ByteBuffer()
            template.write(to: &frame, packetID: 0, timestamp: UInt64(1000 + n), seq: UInt8(truncatingIfNeeded: n))
            let parsed = try #require(try BenchWire.readFrame(from: &frame, maximumSize: 1 << 20))
            let inbound = try BenchWire.parsePublish(flags: parsed.flags, body: parsed.body, version: .v3_1_1)
            #expect(inbound.sentAt == UInt64(1000 + n))
        }
    }

    private func edgeTopic(_ name: String) -> SparkplugEdgeTopic? {
        if case .edge(let topic)? = SparkplugTopic(name) { topic } else { nil }
    }
}
