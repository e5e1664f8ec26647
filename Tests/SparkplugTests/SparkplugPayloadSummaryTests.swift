import Foundation
import SwiftProtobuf
import Testing
@testable import Sparkplug

@Suite struct SparkplugPayloadSummaryTests {
    @Test func summarisesABirth() throws {
        let birth = payload(timestamp: 1_700_000_000_123, seq: 0, metrics: [
            metric("Node Control/Rebirth"),
            metric("bdSeq", long: 7),
            metric("temp", double: 21.5),
            metric(nil, double: 1, alias: 4),
        ])
        let summary = try SparkplugPayloadSummary.decode(encoded(birth)).get()
        #expect(summary.timestamp == 1_700_000_000_123)
        #expect(summary.seq == 0)
        #expect(summary.metricCount == 4)
        #expect(summary.metricNames == ["Node Control/Rebirth", "bdSeq", "temp"])
        #expect(!summary.metricNamesTruncated)
        #expect(summary.bdSeq == 7)
    }

    @Test func bdSeqAsIntValue() throws {
        var bdSeq = SparkplugB.Metric()
        bdSeq.name = "bdSeq"
        bdSeq.intValue = 3
        let summary = try SparkplugPayloadSummary.decode(encoded(payload(metrics: [bdSeq]))).get()
        #expect(summary.bdSeq == 3)
        #expect(summary.timestamp == nil)
        #expect(summary.seq == nil)
    }

    @Test func decodesPeerCaptures() throws {
        let birth = try SparkplugPayloadSummary.decode(PeerCapture.nbirth).get()
        #expect(birth.seq == 0)
        #expect(birth.bdSeq == 0)
        #expect(birth.metricNames == ["temp", "bdSeq"])
        #expect(birth.timestamp == 1_796_299_065_861)
        let data = try SparkplugPayloadSummary.decode(PeerCapture.ndata).get()
        #expect(data.seq == 1)
        #expect(data.metricNames == ["temp"])
        let device = try SparkplugPayloadSummary.decode(PeerCapture.dbirth).get()
        #expect(device.seq == 2)
        let death = try SparkplugPayloadSummary.decode(PeerCapture.ndeathWill).get()
        #expect(death.seq == nil)
        #expect(death.bdSeq == 0)
        #expect(death.timestamp == 1_796_299_065_798)
    }

    /// ByteBuffer-style callers pass raw buffer pointers; other collections are copied.
    @Test func decodesFromRawBuffersAndSlices() throws {
        let bytes = PeerCapture.ndata
        let fromPointer = bytes.withUnsafeBytes { SparkplugPayloadSummary.decode($0) }
        #expect(try fromPointer.get().seq == 1)
        let framed = [0xAA] + bytes + [0xBB]
        #expect(try SparkplugPayloadSummary.decode(framed[1..<(framed.count - 1)]).get().seq == 1)
        #expect(try SparkplugPayloadSummary.decode(Data(bytes)).get().seq == 1)
        #expect(try SparkplugPayloadSummary.decode(bytes.lazy.map { $0 }).get().seq == 1)
    }

    @Test func emptyPayloadIsAnEmptyMessage() throws {
        let summary = try SparkplugPayloadSummary.decode([UInt8]()).get()
        #expect(summary == SparkplugPayloadSummary())
    }

    @Test func metricNamesAreCapped() throws {
        let many = payload(metrics: (0..<10).map { metric("m\($0)") })
        let limits = SparkplugDecodeLimits(maximumMetricNames: 3)
        let summary = try SparkplugPayloadSummary.decode(encoded(many), limits: limits).get()
        #expect(summary.metricCount == 10)
        #expect(summary.metricNames == ["m0", "m1", "m2"])
        #expect(summary.metricNamesTruncated)
    }

    @Test func longMetricNameIsCutAtACharacterBoundary() throws {
        let name = String(repeating: "a", count: 255) + "é" + String(repeating: "b", count: 64 * 1024)
        let summary = try SparkplugPayloadSummary.decode(encoded(payload(metrics: [metric(name, long: 1)]))).get()
        #expect(summary.metricNames == [String(repeating: "a", count: 255)])
        #expect(summary.metricNamesTruncated)
        #expect(SparkplugPayloadSummary.prefix("ab", maximumBytes: 0) == ("", true))
        #expect(SparkplugPayloadSummary.prefix("€€", maximumBytes: 4) == ("€", true))
        #expect(SparkplugPayloadSummary.prefix("€", maximumBytes: 3) == ("€", false))
    }

    @Test func sixtyFourKiBMetricName() throws {
        let name = String(repeating: "n", count: 64 * 1024)
        let summary = try SparkplugPayloadSummary.decode(encoded(payload(seq: 5, metrics: [metric(name, long: 1)]))).get()
        #expect(summary.seq == 5)
        #expect(summary.metricNames.first?.utf8.count == 256)
    }

    @Test func tooLargeIsRefusedBeforeDecoding() {
        let bytes = [UInt8](repeating: 0, count: 2048)
        let result = SparkplugPayloadSummary.decode(bytes, limits: SparkplugDecodeLimits(maximumPayloadBytes: 1024))
        #expect(result == .failure(.tooLarge(size: 2048, limit: 1024)))
    }

    @Test func hostileInputsAreValuesNotCrashes() {
        // An 11-byte varint as the timestamp.
        let hugeVarint: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]
        #expect(SparkplugPayloadSummary.decode(hugeVarint) == .failure(.malformed))
        // A varint that never ends.
        #expect(SparkplugPayloadSummary.decode([0x08, 0xFF, 0xFF]).isFailure)
        // metrics entry claiming 100 bytes with 3 present.
        #expect(SparkplugPayloadSummary.decode([0x12, 100, 1, 2, 3]) == .failure(.truncated))
        // Field number 0.
        #expect(SparkplugPayloadSummary.decode([0x00, 0x01]).isFailure)
        // Wire type 7.
        #expect(SparkplugPayloadSummary.decode([0x0F]).isFailure)
        // Invalid UTF-8 in a metric name.
        #expect(SparkplugPayloadSummary.decode([0x12, 0x03, 0x0A, 0x01, 0xFF]) == .failure(.invalidUTF8))
        // Random bytes.
        var generator = SplitMix(seed: 42)
        for _ in 0..<500 {
            let count = Int(generator.next() % 64)
            let random = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = SparkplugPayloadSummary.decode(random)
        }
    }

    @Test func deeplyNestedGroupsAreRefused() throws {
        // An unknown field 6 opened as a group 100,000 times.
        let nested = [UInt8](repeating: 0x33, count: 100_000)
        #expect(SparkplugPayloadSummary.decode(nested).isFailure)
        // Balanced but deeper than the limit.
        let balanced = [UInt8](repeating: 0x33, count: 200) + [UInt8](repeating: 0x34, count: 200)
        #expect(SparkplugPayloadSummary.decode(balanced).isFailure)
        // Shallow balanced groups are skipped as unknown fields.
        #expect(try SparkplugPayloadSummary.decode([0x33, 0x34, 0x18, 0x02]).get().seq == 2)
    }

    @Test func deeplyNestedTemplatesAreRefused() throws {
        var innermost = metric("leaf", long: 1)
        for _ in 0..<40 {
            var template = SparkplugB.Payload.Template()
            template.metrics = [innermost]
            var outer = SparkplugB.Metric()
            outer.name = "t"
            outer.templateValue = template
            innermost = outer
        }
        let bytes = encoded(payload(metrics: [innermost]))
        #expect(SparkplugPayloadSummary.decode(bytes) == .failure(.tooDeep))
        let lenient = SparkplugDecodeLimits(maximumMessageDepth: 100)
        #expect(try SparkplugPayloadSummary.decode(bytes, limits: lenient).get().metricNames == ["t"])
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

/// Deterministic bytes for the random-input checks.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
