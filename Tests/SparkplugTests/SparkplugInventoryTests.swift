import Foundation
import Testing
@testable import Sparkplug

@Suite struct SparkplugInventoryTests {
    @Test func edgeNodeLifecycle() throws {
        var inventory = SparkplugInventory()
        #expect(inventory.observe(.nbirth(group: "G1", edge: "E1", bdSeq: 0, metricCount: 5, seq: 0, at: 1_000)) == [])
        #expect(inventory.observe(.ndata(group: "G1", edge: "E1", seq: 1, at: 1_100)) == [])
        #expect(inventory.observe(.dbirth(group: "G1", edge: "E1", device: "D1", metricCount: 3, seq: 2, at: 1_200)) == [])
        #expect(inventory.observe(.ddata(group: "G1", edge: "E1", device: "D1", seq: 3, at: 1_300)) == [])
        var node = try #require(inventory.edgeNode(group: "G1", edge: "E1"))
        #expect(node.online)
        #expect(node.bdSeq == 0)
        #expect(node.metricCount == 5)
        #expect(node.lastBirthAt == 1_000)
        #expect(node.devices == [.init(id: "D1", online: true, metricCount: 3, lastBirthAt: 1_200, lastDeathAt: nil)])

        #expect(inventory.observe(.ndeath(group: "G1", edge: "E1", bdSeq: 0, at: 2_000, byWill: true)) == [])
        node = try #require(inventory.edgeNode(group: "G1", edge: "E1"))
        #expect(!node.online)
        #expect(node.lastDeathAt == 2_000)
        #expect(node.lastDeathCause == .will)
        #expect(node.devices.map(\.online) == [false])
        #expect(node.devices.first?.lastDeathAt == 2_000)
        #expect(inventory.observe(.ndata(group: "G1", edge: "E1", seq: 4, at: 2_100))
            == [.dataBeforeBirth(group: "G1", edge: "E1", device: nil, type: .ndata)])
    }

    @Test func dataBeforeBirth() {
        var inventory = SparkplugInventory()
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 0, at: 1))
            == [.dataBeforeBirth(group: "G", edge: "E", device: nil, type: .ndata)])
        #expect(inventory.observe(.dbirth(group: "G", edge: "E", device: "D", metricCount: 1, seq: 1, at: 1))
            == [.dataBeforeBirth(group: "G", edge: "E", device: "D", type: .dbirth)])
        #expect(inventory.observe(.ddeath(group: "G", edge: "E", device: "D", seq: 1, at: 1))
            == [.dataBeforeBirth(group: "G", edge: "E", device: "D", type: .ddeath)])
        #expect(inventory.edgeNodeCount == 0)
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 1, metricCount: 1, seq: 0, at: 2))
        // Device data before that device's birth (the edge node is online).
        #expect(inventory.observe(.ddata(group: "G", edge: "E", device: "D", seq: 1, at: 3))
            == [.dataBeforeBirth(group: "G", edge: "E", device: "D", type: .ddata)])
        _ = inventory.observe(.dbirth(group: "G", edge: "E", device: "D", metricCount: 1, seq: 2, at: 4))
        #expect(inventory.observe(.ddata(group: "G", edge: "E", device: "D", seq: 3, at: 5)) == [])
        _ = inventory.observe(.ddeath(group: "G", edge: "E", device: "D", seq: 4, at: 6))
        #expect(inventory.observe(.ddata(group: "G", edge: "E", device: "D", seq: 5, at: 7))
            == [.dataBeforeBirth(group: "G", edge: "E", device: "D", type: .ddata)])
        #expect(inventory.edgeNode(group: "G", edge: "E")?.devices.first?.lastDeathAt == 6)
    }

    @Test func deathWithAnotherBdSeqIsIgnored() throws {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 4, metricCount: 1, seq: 0, at: 1))
        // The will of a connection that was taken over arrives after the new session's birth.
        #expect(inventory.observe(.ndeath(group: "G", edge: "E", bdSeq: 3, at: 2, byWill: true))
            == [.bdSeqMismatch(group: "G", edge: "E", birth: 4, death: 3)])
        #expect(try #require(inventory.edgeNode(group: "G", edge: "E")).online)
        #expect(inventory.observe(.ndeath(group: "G", edge: "E", bdSeq: 4, at: 3, byWill: false)) == [])
        let node = try #require(inventory.edgeNode(group: "G", edge: "E"))
        #expect(!node.online)
        #expect(node.lastDeathCause == .death)
    }

    @Test func missingBdSeqAndSeq() throws {
        var inventory = SparkplugInventory()
        #expect(inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: nil, metricCount: 1, seq: nil, at: 1))
            == [.missingBdSeq(group: "G", edge: "E", type: .nbirth), .missingSeq(group: "G", edge: "E", type: .nbirth)])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: nil, at: 2)) == [.missingSeq(group: "G", edge: "E", type: .ndata)])
        // No seq known yet: the next one is taken as it comes.
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 17, at: 3)) == [])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 18, at: 4)) == [])
        // Without a birth bdSeq the death cannot be matched, so it is taken.
        #expect(inventory.observe(.ndeath(group: "G", edge: "E", bdSeq: 9, at: 5, byWill: true)) == [])
        #expect(try #require(inventory.edgeNode(group: "G", edge: "E")).online == false)
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 1, metricCount: 1, seq: 0, at: 6))
        #expect(inventory.observe(.ndeath(group: "G", edge: "E", bdSeq: nil, at: 7, byWill: true))
            == [.missingBdSeq(group: "G", edge: "E", type: .ndeath)])
        #expect(try #require(inventory.edgeNode(group: "G", edge: "E")).online == false)
    }

    @Test func seqWrapsAndGapsAreReportedOnce() {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 254, at: 0))
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 255, at: 1)) == [])
        #expect(inventory.observe(.ddeath(group: "G", edge: "E", device: "unknown", seq: 0, at: 2)) == [])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 1, at: 3)) == [])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 5, at: 4))
            == [.seqGap(group: "G", edge: "E", expected: 2, received: 5)])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 6, at: 5)) == [])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 6, at: 6))
            == [.seqGap(group: "G", edge: "E", expected: 7, received: 6)])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 300, at: 7))
            == [.seqGap(group: "G", edge: "E", expected: 7, received: 300)])
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 0, at: 8)) == [])
        // Device messages share the node's counter.
        #expect(inventory.observe(.dbirth(group: "G", edge: "E", device: "D", metricCount: 1, seq: 1, at: 9)) == [])
        #expect(inventory.observe(.ddata(group: "G", edge: "E", device: "D", seq: 3, at: 10))
            == [.seqGap(group: "G", edge: "E", expected: 2, received: 3)])
        // A new birth starts a new session count.
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 11))
        #expect(inventory.observe(.ndata(group: "G", edge: "E", seq: 1, at: 12)) == [])
    }

    @Test func peerSessionAsObserved() throws {
        // The messages of PeerCapture, as the server would feed them.
        var inventory = SparkplugInventory()
        let birth = try SparkplugPayloadSummary.decode(PeerCapture.nbirth).get()
        let data = try SparkplugPayloadSummary.decode(PeerCapture.ndata).get()
        let device = try SparkplugPayloadSummary.decode(PeerCapture.dbirth).get()
        let death = try SparkplugPayloadSummary.decode(PeerCapture.ndeathWill).get()
        var anomalies: [SparkplugAnomaly] = []
        anomalies += inventory.observe(.nbirth(group: "G1", edge: "E1", bdSeq: birth.bdSeq, metricCount: birth.metricCount, seq: birth.seq, at: 10))
        anomalies += inventory.observe(.ndata(group: "G1", edge: "E1", seq: data.seq, at: 11))
        anomalies += inventory.observe(.dbirth(group: "G1", edge: "E1", device: "D1", metricCount: device.metricCount, seq: device.seq, at: 12))
        anomalies += inventory.observe(.connectionLost(group: "G1", edge: "E1", at: 13))
        anomalies += inventory.observe(.ndeath(group: "G1", edge: "E1", bdSeq: death.bdSeq, at: 13, byWill: true))
        #expect(anomalies == [])
        let node = try #require(inventory.edgeNode(group: "G1", edge: "E1"))
        #expect(!node.online)
        #expect(node.lastDeathCause == .will)
    }

    @Test func rebirthMakesDevicesStale() throws {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        _ = inventory.observe(.dbirth(group: "G", edge: "E", device: "D", metricCount: 2, seq: 1, at: 2))
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 3))
        let device = try #require(inventory.edgeNode(group: "G", edge: "E")?.devices.first)
        #expect(!device.online)
        #expect(device.lastDeathAt == nil)
        #expect(inventory.observe(.ddata(group: "G", edge: "E", device: "D", seq: 1, at: 4))
            == [.dataBeforeBirth(group: "G", edge: "E", device: "D", type: .ddata)])
    }

    @Test func connectionLostTakesTheNodeOffline() throws {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        #expect(inventory.observe(.connectionLost(group: "G", edge: "E", at: 5)) == [])
        let node = try #require(inventory.edgeNode(group: "G", edge: "E"))
        #expect(!node.online)
        #expect(node.lastDeathCause == .connectionLost)
        #expect(inventory.observe(.connectionLost(group: "G", edge: "unknown", at: 5)) == [])
        // A death for a node never seen is nothing to track.
        #expect(inventory.observe(.ndeath(group: "G", edge: "never", bdSeq: 0, at: 6, byWill: true)) == [])
        #expect(inventory.edgeNodeCount == 1)
    }

    @Test func hostApplications() throws {
        var inventory = SparkplugInventory()
        #expect(inventory.observe(.state(hostID: "scada", online: true, timestamp: 100, at: 1_000)) == [])
        #expect(inventory.hostApplication("scada") == .init(id: "scada", online: true, lastStateAt: 1_000, lastStateTimestamp: 100))
        // An older STATE (e.g. a delayed will of an earlier session) is ignored.
        #expect(inventory.observe(.state(hostID: "scada", online: false, timestamp: 99, at: 1_100))
            == [.staleState(hostID: "scada", timestamp: 99, latest: 100)])
        #expect(inventory.hostApplication("scada")?.online == true)
        #expect(inventory.observe(.state(hostID: "scada", online: false, timestamp: 100, at: 1_200)) == [])
        #expect(inventory.hostApplication("scada") == .init(id: "scada", online: false, lastStateAt: 1_200, lastStateTimestamp: 100))
    }

    @Test func edgeCapEvictsTheLongestOffline() throws {
        var inventory = SparkplugInventory(limits: SparkplugInventoryLimits(maximumEdgeNodes: 3))
        for edge in ["A", "B", "C"] {
            _ = inventory.observe(.nbirth(group: "G", edge: edge, bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        }
        #expect(inventory.observe(.nbirth(group: "G", edge: "D", bdSeq: 0, metricCount: 1, seq: 0, at: 2)) == [.notTracked(.edgeNodes)])
        _ = inventory.observe(.ndeath(group: "G", edge: "B", bdSeq: 0, at: 3, byWill: true))
        _ = inventory.observe(.ndeath(group: "G", edge: "A", bdSeq: 0, at: 4, byWill: true))
        // A came back and went again: it is now the most recently offline.
        _ = inventory.observe(.nbirth(group: "G", edge: "B", bdSeq: 1, metricCount: 1, seq: 0, at: 5))
        _ = inventory.observe(.ndeath(group: "G", edge: "B", bdSeq: 1, at: 6, byWill: true))
        #expect(inventory.observe(.nbirth(group: "G", edge: "D", bdSeq: 0, metricCount: 1, seq: 0, at: 7)) == [])
        #expect(inventory.edgeNode(group: "G", edge: "A") == nil)
        #expect(inventory.edgeNode(group: "G", edge: "B") != nil)
        #expect(inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 8)) == [])
        #expect(inventory.edgeNode(group: "G", edge: "B") == nil)
        #expect(inventory.observe(.nbirth(group: "G", edge: "F", bdSeq: 0, metricCount: 1, seq: 0, at: 9)) == [.notTracked(.edgeNodes)])
        #expect(Set(inventory.snapshot().groups.flatMap(\.edgeNodes).map(\.id)) == ["C", "D", "E"])
    }

    @Test func groupCapAndGroupsFreedByEviction() {
        var inventory = SparkplugInventory(limits: SparkplugInventoryLimits(maximumGroups: 2, maximumEdgeNodes: 2))
        _ = inventory.observe(.nbirth(group: "G1", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        _ = inventory.observe(.nbirth(group: "G2", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        #expect(inventory.observe(.nbirth(group: "G3", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1)) == [.notTracked(.groups)])
        _ = inventory.observe(.ndeath(group: "G1", edge: "E", bdSeq: 0, at: 2, byWill: true))
        // The group cap is checked first: G3 is refused although an edge node could be evicted.
        #expect(inventory.observe(.nbirth(group: "G3", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 3)) == [.notTracked(.groups)])
        // A second edge node in G2 evicts G1's, and G1 with it.
        #expect(inventory.observe(.nbirth(group: "G2", edge: "E2", bdSeq: 0, metricCount: 1, seq: 0, at: 4)) == [])
        #expect(inventory.groupCount == 1)
        #expect(inventory.snapshot().groups.map(\.id) == ["G2"])
    }

    @Test func deviceCapEvictsOfflineDevices() {
        var inventory = SparkplugInventory(limits: SparkplugInventoryLimits(maximumDevices: 2))
        _ = inventory.observe(.nbirth(group: "G", edge: "E", bdSeq: 0, metricCount: 1, seq: 0, at: 1))
        _ = inventory.observe(.dbirth(group: "G", edge: "E", device: "D1", metricCount: 1, seq: 1, at: 2))
        _ = inventory.observe(.dbirth(group: "G", edge: "E", device: "D2", metricCount: 1, seq: 2, at: 3))
        #expect(inventory.observe(.dbirth(group: "G", edge: "E", device: "D3", metricCount: 1, seq: 3, at: 4)) == [.notTracked(.devices)])
        _ = inventory.observe(.ddeath(group: "G", edge: "E", device: "D2", seq: 4, at: 5))
        #expect(inventory.observe(.dbirth(group: "G", edge: "E", device: "D3", metricCount: 1, seq: 5, at: 6)) == [])
        #expect(inventory.edgeNode(group: "G", edge: "E")?.devices.map(\.id) == ["D1", "D3"])
        #expect(inventory.trackedDeviceCount == 2)
        // A known device's rebirth needs no room.
        #expect(inventory.observe(.dbirth(group: "G", edge: "E", device: "D1", metricCount: 4, seq: 6, at: 7)) == [])
    }

    @Test func hostCapEvictsOfflineHosts() {
        var inventory = SparkplugInventory(limits: SparkplugInventoryLimits(maximumHostApplications: 1))
        _ = inventory.observe(.state(hostID: "h1", online: true, timestamp: 1, at: 1))
        #expect(inventory.observe(.state(hostID: "h2", online: true, timestamp: 1, at: 2)) == [.notTracked(.hostApplications)])
        _ = inventory.observe(.state(hostID: "h1", online: false, timestamp: 1, at: 3))
        #expect(inventory.observe(.state(hostID: "h2", online: true, timestamp: 1, at: 4)) == [])
        #expect(inventory.snapshot().hostApplications.map(\.id) == ["h2"])
    }

    /// Flapping edge nodes leave stale queue entries behind; they are dropped, so memory stays
    /// within a constant factor of the caps.
    @Test func evictionQueuesStayBounded() {
        var inventory = SparkplugInventory(limits: SparkplugInventoryLimits(maximumEdgeNodes: 10, maximumDevices: 10,
                                                                            maximumHostApplications: 10))
        for round in 0..<5_000 {
            let seq = UInt64(round)
            _ = inventory.observe(.nbirth(group: "G", edge: "E\(round % 10)", bdSeq: seq, metricCount: 1, seq: 0, at: seq))
            _ = inventory.observe(.dbirth(group: "G", edge: "E\(round % 10)", device: "D", metricCount: 1, seq: 1, at: seq))
            _ = inventory.observe(.ndeath(group: "G", edge: "E\(round % 10)", bdSeq: seq, at: seq, byWill: true))
            _ = inventory.observe(.state(hostID: "h\(round % 10)", online: round % 2 == 0, timestamp: seq, at: seq))
        }
        let sizes = inventory.evictionQueueSizes
        #expect(sizes.edges <= 2 * 10 + 64)
        #expect(sizes.devices <= 2 * 10 + 64)
        #expect(sizes.hosts <= 2 * 10 + 64)
        #expect(inventory.edgeNodeCount == 10)
    }

    @Test func snapshotIsSortedAndEncodesAsJSON() throws {
        var inventory = SparkplugInventory()
        _ = inventory.observe(.nbirth(group: "Zeta", edge: "E2", bdSeq: 1, metricCount: 2, seq: 0, at: 10))
        _ = inventory.observe(.nbirth(group: "Alpha", edge: "E9", bdSeq: 0, metricCount: 1, seq: 0, at: 11))
        _ = inventory.observe(.nbirth(group: "Alpha", edge: "E1", bdSeq: 0, metricCount: 1, seq: 0, at: 12))
        _ = inventory.observe(.dbirth(group: "Alpha", edge: "E1", device: "pump", metricCount: 4, seq: 1, at: 13))
        _ = inventory.observe(.state(hostID: "scada", online: true, timestamp: 5, at: 14))
        let snapshot = inventory.snapshot()
        #expect(snapshot.groups.map(\.id) == ["Alpha", "Zeta"])
        #expect(snapshot.groups[0].edgeNodes.map(\.id) == ["E1", "E9"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(snapshot)
        #expect(try JSONDecoder().decode(SparkplugInventorySnapshot.self, from: json) == snapshot)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""devices":[{"id":"pump","lastBirthAt":13,"metricCount":4,"online":true}]"#))
        #expect(text.contains(#""hostApplications":[{"id":"scada","lastStateAt":14,"lastStateTimestamp":5,"online":true}]"#))
    }

    @Test func anomalyKinds() {
        #expect(SparkplugAnomaly.notTracked(.devices).kind == .notTracked)
        #expect(SparkplugAnomaly.seqGap(group: "", edge: "", expected: 0, received: 1).kind.rawValue == "seqGap")
    }
}

@Suite struct SparkplugStatePayloadTests {
    @Test func decodesAndEncodes() {
        #expect(SparkplugStatePayload.decode(Array(#"{"online": true, "timestamp": 1700000000000}"#.utf8))
            == SparkplugStatePayload(online: true, timestamp: 1_700_000_000_000))
        #expect(SparkplugStatePayload.decode(SparkplugStatePayload(online: false, timestamp: 7).encoded())
            == SparkplugStatePayload(online: false, timestamp: 7))
        #expect(SparkplugStatePayload(online: false, timestamp: 7).encoded() == Array(#"{"online":false,"timestamp":7}"#.utf8))
        // The 2.2 form, other JSON, and oversized input.
        #expect(SparkplugStatePayload.decode(Array("ONLINE".utf8)) == nil)
        #expect(SparkplugStatePayload.decode(Array(#"{"online":"yes","timestamp":1}"#.utf8)) == nil)
        #expect(SparkplugStatePayload.decode(Array(#"{"online":true}"#.utf8)) == nil)
        #expect(SparkplugStatePayload.decode([UInt8](repeating: 0x20, count: 5000)) == nil)
    }
}
