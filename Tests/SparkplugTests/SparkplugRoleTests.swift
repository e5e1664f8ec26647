import MQTTCodec
import Testing
@testable import Sparkplug

@Suite struct SparkplugRoleTests {
    /// Whether any grant of `access` in `grants` matches `topic` (with the broker's own matcher).
    func allows(_ grants: [SparkplugGrant], _ access: SparkplugGrant.Access, _ topic: String) -> Bool {
        grants.contains { $0.access == access && TopicRules.matches(filter: $0.filter, topic: topic) }
    }

    @Test func edgeTemplate() throws {
        let grants = try SparkplugRole.edge(group: "G1", edgeNode: "E1").grants()
        for grant in grants { try TopicRules.validateFilter(grant.filter, limits: nil) }
        for topic in ["spBv1.0/G1/NBIRTH/E1", "spBv1.0/G1/NDEATH/E1", "spBv1.0/G1/NDATA/E1",
                      "spBv1.0/G1/DBIRTH/E1/D1", "spBv1.0/G1/DDEATH/E1/D2", "spBv1.0/G1/DDATA/E1/D3"] {
            #expect(allows(grants, .publish, topic), "\(topic)")
        }
        for topic in ["spBv1.0/G1/NBIRTH/E2", "spBv1.0/G2/NDATA/E1", "spBv1.0/G1/NCMD/E1", "spBv1.0/G1/DCMD/E1/D1",
                      "spBv1.0/STATE/E1", "spBv1.0/G1/DDATA/E2/D1", "$sparkplug/certificates/spBv1.0/G1/NBIRTH/E1"] {
            #expect(!allows(grants, .publish, topic), "\(topic)")
        }
        #expect(allows(grants, .subscribe, "spBv1.0/G1/NCMD/E1"))
        #expect(allows(grants, .subscribe, "spBv1.0/G1/DCMD/E1/D1"))
        #expect(allows(grants, .subscribe, "spBv1.0/STATE/scada"))
        #expect(!allows(grants, .subscribe, "spBv1.0/G1/NCMD/E2"))
        #expect(!allows(grants, .subscribe, "spBv1.0/G1/NDATA/E2"))
        #expect(grants.filter { $0.access == .publish }.allSatisfy { $0.retain == .forbidden })
    }

    @Test func hostTemplateForAllGroups() throws {
        let grants = try SparkplugRole.host(hostID: "scada", groups: .all).grants()
        for grant in grants { try TopicRules.validateFilter(grant.filter, limits: nil) }
        #expect(allows(grants, .subscribe, "spBv1.0/AnyGroup/NDATA/E"))
        #expect(allows(grants, .subscribe, "spBv1.0/STATE/scada"))
        #expect(allows(grants, .subscribe, "$sparkplug/certificates/spBv1.0/G/NBIRTH/E"))
        #expect(allows(grants, .publish, "spBv1.0/G/NCMD/E"))
        #expect(allows(grants, .publish, "spBv1.0/G/DCMD/E/D"))
        #expect(allows(grants, .publish, "spBv1.0/STATE/scada"))
        #expect(!allows(grants, .publish, "spBv1.0/STATE/other"))
        #expect(!allows(grants, .publish, "spBv1.0/G/NBIRTH/E"))
        #expect(!allows(grants, .publish, "spBv1.0/G/NDATA/E"))
        #expect(grants.first { $0.filter == "spBv1.0/STATE/scada" && $0.access == .publish }?.retain == .required)
    }

    @Test func hostTemplateForListedGroups() throws {
        let grants = try SparkplugRole.host(hostID: "h1", groups: .listed(["G1", "G2"])).grants()
        for grant in grants { try TopicRules.validateFilter(grant.filter, limits: nil) }
        #expect(allows(grants, .subscribe, "spBv1.0/G1/NDATA/E"))
        #expect(allows(grants, .subscribe, "spBv1.0/G2/DDATA/E/D"))
        #expect(!allows(grants, .subscribe, "spBv1.0/G3/NDATA/E"))
        #expect(allows(grants, .subscribe, "spBv1.0/STATE/h1"))
        #expect(!allows(grants, .subscribe, "spBv1.0/STATE/h2"))
        #expect(allows(grants, .subscribe, "$sparkplug/certificates/spBv1.0/G1/DBIRTH/E/D"))
        #expect(!allows(grants, .subscribe, "$sparkplug/certificates/spBv1.0/G3/NBIRTH/E"))
        #expect(allows(grants, .publish, "spBv1.0/G2/NCMD/E"))
        #expect(!allows(grants, .publish, "spBv1.0/G3/NCMD/E"))
        #expect(allows(grants, .publish, "spBv1.0/STATE/h1"))
    }

    @Test func monitorTemplate() throws {
        let silent = try SparkplugRole.monitor(hostID: nil).grants()
        #expect(allows(silent, .read, "spBv1.0/G/NDATA/E"))
        #expect(allows(silent, .read, "$sparkplug/certificates/spBv1.0/G/NBIRTH/E"))
        #expect(!silent.contains { $0.access == .publish })
        let stating = try SparkplugRole.monitor(hostID: "mon").grants()
        #expect(allows(stating, .publish, "spBv1.0/STATE/mon"))
        #expect(!allows(stating, .publish, "spBv1.0/G/NCMD/E"))
        #expect(stating.filter { $0.access == .publish }.map(\.filter) == ["spBv1.0/STATE/mon"])
    }

    @Test func wildcardIdsAreRefused() {
        #expect(throws: SparkplugRoleError.invalidID("+")) { try SparkplugRole.edge(group: "+", edgeNode: "E").grants() }
        #expect(throws: SparkplugRoleError.invalidID("a/#")) { try SparkplugRole.edge(group: "G", edgeNode: "a/#").grants() }
        #expect(throws: SparkplugRoleError.invalidID("")) { try SparkplugRole.host(hostID: "", groups: .all).grants() }
        #expect(throws: SparkplugRoleError.invalidID("#")) { try SparkplugRole.host(hostID: "h", groups: .listed(["#"])).grants() }
        #expect(throws: SparkplugRoleError.invalidID("x/y")) { try SparkplugRole.monitor(hostID: "x/y").grants() }
        #expect(throws: SparkplugRoleError.reservedGroup) { try SparkplugRole.edge(group: "STATE", edgeNode: "E").grants() }
    }

    @Test func grantDescription() {
        #expect(SparkplugGrant(.publish, "spBv1.0/STATE/h", retain: .required).description == "publish spBv1.0/STATE/h (retain required)")
        #expect(SparkplugGrant(.read, "spBv1.0/#").description == "read spBv1.0/#")
    }
}

@Suite struct SparkplugAuthorityTests {
    let edge = SparkplugAuthority(roles: [.edge(group: "G1", edgeNode: "E1")])
    let host = SparkplugAuthority(roles: [.host(hostID: "scada", groups: .listed(["G1"]))])
    let monitor = SparkplugAuthority(roles: [.monitor(hostID: "mon")])

    @Test func edgeNodePublishesOnlyForItself() {
        #expect(edge.decide(topicName: "spBv1.0/G1/NBIRTH/E1") == .allowed(by: .edge(group: "G1", edgeNode: "E1")))
        #expect(edge.decide(topicName: "spBv1.0/G1/DDATA/E1/D7")?.isAllowed == true)
        #expect(edge.decide(topicName: "spBv1.0/G1/NBIRTH/E2") == .refused(.forgedBirth))
        #expect(edge.decide(topicName: "spBv1.0/G2/NDEATH/E1") == .refused(.forgedBirth))
        #expect(edge.decide(topicName: "spBv1.0/G1/DBIRTH/E2/D1") == .refused(.forgedBirth))
        #expect(edge.decide(topicName: "spBv1.0/G1/NCMD/E1") == .refused(.commandWithoutHostRole))
        #expect(edge.decide(topicName: "spBv1.0/STATE/E1") == .refused(.foreignHostState))
    }

    @Test func hostCommandsItsGroups() {
        #expect(host.decide(topicName: "spBv1.0/G1/NCMD/E1")?.isAllowed == true)
        #expect(host.decide(topicName: "spBv1.0/G1/DCMD/E1/D1")?.isAllowed == true)
        #expect(host.decide(topicName: "spBv1.0/G2/NCMD/E1") == .refused(.commandWithoutHostRole))
        #expect(host.decide(topicName: "spBv1.0/G1/NBIRTH/E1") == .refused(.forgedBirth))
        #expect(host.decide(topicName: "spBv1.0/STATE/scada")?.isAllowed == true)
        #expect(host.decide(topicName: "spBv1.0/STATE/other") == .refused(.foreignHostState))
    }

    @Test func monitorPublishesOnlyItsState() {
        #expect(monitor.decide(topicName: "spBv1.0/STATE/mon")?.isAllowed == true)
        #expect(monitor.decide(topicName: "spBv1.0/G1/NCMD/E1") == .refused(.commandWithoutHostRole))
        #expect(SparkplugAuthority(roles: [.monitor(hostID: nil)]).decide(topicName: "spBv1.0/STATE/mon") == .refused(.foreignHostState))
    }

    @Test func serverNamespaceIsNobodysToPublish() {
        let everything = SparkplugAuthority(roles: [.edge(group: "G1", edgeNode: "E1"), .host(hostID: "h", groups: .all), .monitor(hostID: "m")])
        for topic in ["$sparkplug/certificates/spBv1.0/G1/NBIRTH/E1", "$sparkplug/certificates/spBv1.0/G1/DBIRTH/E1/D",
                      "$sparkplug/anything", "$sparkplug"] {
            #expect(everything.decide(topicName: topic) == .refused(.brokerOnlyNamespace), "\(topic)")
        }
    }

    @Test func noRolesAndMalformedTopics() {
        let nobody = SparkplugAuthority(roles: [])
        #expect(nobody.decide(topicName: "spBv1.0/G1/NBIRTH/E1") == .refused(.forgedBirth))
        #expect(nobody.decide(topicName: "spBv1.0/G1/NCMD/E1") == .refused(.commandWithoutHostRole))
        #expect(nobody.decide(topicName: "plant/line1") == nil)
        #expect(edge.decide(topicName: "spBv1.0/G1/STATE/h") == .refused(.malformedTopic(.unknownMessageType)))
        #expect(SparkplugRefusal.malformedTopic(.invalidID).name == "malformedTopic")
    }

    @Test func severalRoles() {
        let both = SparkplugAuthority(roles: [.edge(group: "G1", edgeNode: "E1"), .edge(group: "G1", edgeNode: "E2"),
                                              .host(hostID: "h", groups: .all)])
        #expect(both.decide(topicName: "spBv1.0/G1/NBIRTH/E2") == .allowed(by: .edge(group: "G1", edgeNode: "E2")))
        #expect(both.decide(topicName: "spBv1.0/G9/NCMD/E1") == .allowed(by: .host(hostID: "h", groups: .all)))
        #expect(both.decide(topicName: "spBv1.0/G1/NBIRTH/E3") == .refused(.forgedBirth))
    }
}
