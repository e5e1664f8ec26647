import Testing
@testable import Sparkplug

@Suite struct SparkplugRoleBindingTests {
    @Test func templateIsExpandedPerIdentity() throws {
        let binding = try SparkplugRoleBinding(subject: .all, template: .edge(group: "plant1", edgeNode: "%u"), source: "t")
        #expect(binding.role(username: "press7", clientID: "c", certificateIdentity: nil) == .edge(group: "plant1", edgeNode: "press7"))
        let byClient = try SparkplugRoleBinding(subject: .all, template: .edge(group: "%u", edgeNode: "%c-n"), source: "t")
        #expect(byClient.role(username: "g", clientID: "c1", certificateIdentity: nil) == .edge(group: "g", edgeNode: "c1-n"))
    }

    @Test func valuesThatWouldWidenAPatternGiveNoRole() throws {
        let binding = try SparkplugRoleBinding(subject: .all, template: .edge(group: "plant1", edgeNode: "%u"), source: "t")
        for name in ["a/b", "+", "#", "", "x\u{0}y"] {
            #expect(binding.role(username: name, clientID: "c", certificateIdentity: nil) == nil, "\(name)")
        }
        #expect(binding.role(username: nil, clientID: "c", certificateIdentity: nil) == nil)
        let group = try SparkplugRoleBinding(subject: .all, template: .edge(group: "%u", edgeNode: "e"), source: "t")
        #expect(group.role(username: "STATE", clientID: "c", certificateIdentity: nil) == nil)
    }

    @Test func subjectsSelectTheirIdentities() throws {
        let host = SparkplugRole.host(hostID: "scada1", groups: .listed(["plant1"]))
        let user = try SparkplugRoleBinding(subject: .user("scada"), template: host, source: "t")
        #expect(user.role(username: "scada", clientID: "x", certificateIdentity: nil) == host)
        #expect(user.role(username: "other", clientID: "x", certificateIdentity: nil) == nil)
        let role = try SparkplugRoleBinding(subject: .aclRole("hosts"), template: host, source: "t")
        #expect(role.role(username: "u", clientID: "x", certificateIdentity: nil, aclRoles: ["hosts"]) == host)
        #expect(role.role(username: "u", clientID: "x", certificateIdentity: nil, aclRoles: []) == nil)
        let cert = try SparkplugRoleBinding(subject: .certificate("CN=scada"), template: host, source: "t")
        #expect(cert.role(username: nil, clientID: "x", certificateIdentity: "CN=scada") == host)
        #expect(cert.role(username: "CN=scada", clientID: "x", certificateIdentity: nil) == nil)
    }

    @Test func wildcardIdsAreRefusedWhenTheBindingIsMade() {
        #expect(throws: SparkplugRoleError.self) {
            try SparkplugRoleBinding(subject: .all, template: .edge(group: "plant/1", edgeNode: "%u"), source: "t")
        }
        #expect(throws: SparkplugRoleError.self) {
            try SparkplugRoleBinding(subject: .all, template: .host(hostID: "h", groups: .listed(["#"])), source: "t")
        }
    }

    @Test func dataObservationReadsOnlyTheTopLevelSeq() throws {
        var payload = SparkplugB.Payload()
        payload.timestamp = 5
        payload.seq = 17
        var metric = SparkplugB.Metric()
        metric.name = "flow"
        metric.doubleValue = 1
        payload.metrics = [metric]
        let bytes: [UInt8] = try payload.serializedBytes()
        let topic = try #require(SparkplugEdgeTopic(.ndata, groupID: "g", edgeNodeID: "e"))
        let observed = bytes.withUnsafeBufferPointer { SparkplugObservation.from(topic, payload: $0, at: 9, byWill: false) }
        #expect(try observed.get() == .ndata(group: "g", edge: "e", seq: 17, at: 9))
        let garbage: [UInt8] = [0x0A, 0xFF, 0xFF, 0xFF]
        let bad = garbage.withUnsafeBufferPointer { SparkplugObservation.from(topic, payload: $0, at: 9, byWill: false) }
        #expect(throws: SparkplugPayloadError.self) { try bad.get() }
        let command = try #require(SparkplugEdgeTopic(.ncmd, groupID: "g", edgeNodeID: "e"))
        #expect(try garbage.withUnsafeBufferPointer { SparkplugObservation.from(command, payload: $0, at: 9, byWill: false) }.get() == nil)
    }
}
