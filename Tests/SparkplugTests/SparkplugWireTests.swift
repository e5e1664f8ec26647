import SwiftProtobuf
import Testing
@testable import Sparkplug

@Suite struct SparkplugWireTests {
    @Test func replacesTheTimestampOfAGeneratedPayload() throws {
        let death = payload(timestamp: 1_000, metrics: [metric("bdSeq", long: 3)])
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: encoded(death), with: 1_796_299_999_999))
        let decoded = try decoded(rewritten)
        #expect(decoded.timestamp == 1_796_299_999_999)
        #expect(decoded.metrics == death.metrics)
        // Only field 1 changed: the rest is byte for byte the same.
        var expected = death
        expected.timestamp = 1_796_299_999_999
        #expect(rewritten == encoded(expected))
    }

    @Test func rewritesThePeersWillInPlace() throws {
        let will = PeerCapture.ndeathWill
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: will, with: 1_796_299_070_000))
        // Same varint width, so the same length, and everything after the timestamp unchanged.
        #expect(rewritten.count == will.count)
        #expect(rewritten[7...] == will[7...])
        #expect(try decoded(rewritten).timestamp == 1_796_299_070_000)
        #expect(try SparkplugPayloadSummary.decode(rewritten).get().bdSeq == 0)
    }

    @Test func addsTheTimestampInFrontWhenAbsent() throws {
        let will = PeerCapture.ndeathWithoutTimestamp
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: will, with: 150))
        #expect(rewritten == [0x08, 0x96, 0x01] + will)
        #expect(try decoded(rewritten).timestamp == 150)
    }

    @Test func emptyPayloadGetsJustTheTimestamp() throws {
        #expect(SparkplugWire.replacingTimestamp(in: [], with: 0) == [0x08, 0x00])
        #expect(SparkplugWire.replacingTimestamp(in: [], with: UInt64.max) == [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    @Test func duplicatesOfTheTimestampAreRemoved() throws {
        // timestamp 1, seq 3, timestamp 2, an unknown field 9 (fixed32), timestamp 4.
        let wire: [UInt8] = [0x08, 0x01, 0x18, 0x03, 0x08, 0x02, 0x4D, 0xDE, 0xAD, 0xBE, 0xEF, 0x08, 0x04]
        #expect(try decoded(wire).timestamp == 4)
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: wire, with: 300))
        #expect(rewritten == [0x08, 0xAC, 0x02, 0x18, 0x03, 0x4D, 0xDE, 0xAD, 0xBE, 0xEF])
        #expect(try decoded(rewritten).timestamp == 300)
    }

    @Test func unknownFieldsAndGroupsAreKeptVerbatimAndInOrder() throws {
        let wire: [UInt8] = [
            0xA2, 0x06, 0x02, 0x68, 0x69,        // field 100, length-delimited "hi"
            0x12, 0x04, 0x0A, 0x02, 0x6D, 0x31,  // metrics { name: "m1" }
            0x33, 0x08, 0x05, 0x3B, 0x3C, 0x34,  // group 6 { varint 1 = 5, group 7 {} }
            0x08, 0x07,                          // timestamp 7
            0x31, 1, 2, 3, 4, 5, 6, 7, 8,        // field 6, fixed64
            0x18, 0x09,                          // seq 9
        ]
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: wire, with: 8))
        var expected = wire
        expected[18] = 0x08
        #expect(rewritten == expected)
        let decoded = try decoded(rewritten)
        #expect(decoded.timestamp == 8)
        #expect(decoded.seq == 9)
        #expect(decoded.metrics.map(\.name) == ["m1"])
    }

    @Test func notWireFormatIsNil() {
        let cases: [[UInt8]] = [
            [0x08],                                                   // varint missing
            [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01],    // 11-byte varint
            [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x02],     // 10 bytes above 64 bits
            [0x12, 0x05, 0x01],                                       // truncated length-delimited
            [0x12] + [UInt8](repeating: 0xFF, count: 9) + [0x01],     // length near 2^64
            [0x09, 0x01, 0x02],                                       // truncated fixed64
            [0x0D, 0x01],                                             // truncated fixed32
            [0x00, 0x00],                                             // field number 0
            [0x0E, 0x00],                                             // wire type 6
            [0x34],                                                   // end group without start
            [0x33, 0x08, 0x01],                                       // group never closed
            [0x33, 0x3C],                                             // group closed with another number
            [0x80, 0x80, 0x80, 0x80, 0x80, 0x01],                     // tag above 32 bits
            [0x0A, 0x01, 0x00],                                       // timestamp as length-delimited
            [0x09, 1, 2, 3, 4, 5, 6, 7, 8],                           // timestamp as fixed64
        ]
        for wire in cases {
            #expect(SparkplugWire.replacingTimestamp(in: wire, with: 1) == nil, "\(hex(wire))")
        }
    }

    @Test func deepGroupsAreRefusedWithoutRecursion() {
        let deep = [UInt8](repeating: 0x33, count: 100_000) + [UInt8](repeating: 0x34, count: 100_000)
        #expect(SparkplugWire.replacingTimestamp(in: deep, with: 1) == nil)
        let shallow = [UInt8](repeating: 0x33, count: 10) + [UInt8](repeating: 0x34, count: 10)
        #expect(SparkplugWire.replacingTimestamp(in: shallow, with: 1) == [0x08, 0x01] + shallow)
    }

    @Test func aSixtyFourKiBMetricIsCopiedThrough() throws {
        let big = payload(timestamp: 5, seq: 1, metrics: [metric(String(repeating: "x", count: 64 * 1024), long: 1)])
        let rewritten = try #require(SparkplugWire.replacingTimestamp(in: encoded(big), with: 6))
        var expected = big
        expected.timestamp = 6
        #expect(rewritten == encoded(expected))
    }

    /// Whatever the bytes, the rewrite either refuses them or yields a payload whose only
    /// timestamp is the new one and whose other fields are unchanged.
    @Test func randomInputs() throws {
        var generator = SplitMix(seed: 7)
        var accepted = 0
        for _ in 0..<2_000 {
            let count = Int(generator.next() % 24)
            let wire = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next() % 40) }
            guard let rewritten = SparkplugWire.replacingTimestamp(in: wire, with: 99) else { continue }
            accepted += 1
            let before = try #require(ProtobufWire.fields(wire))
            let after = try #require(ProtobufWire.fields(rewritten))
            #expect(after.filter { $0.number == 1 }.map(\.varint) == [99])
            let others = { (fields: [ProtobufWire.Field], bytes: [UInt8]) in
                fields.filter { $0.number != 1 }.map { Array(bytes[$0.range]) }
            }
            #expect(others(before, wire) == others(after, rewritten))
        }
        #expect(accepted > 0)
    }
}
