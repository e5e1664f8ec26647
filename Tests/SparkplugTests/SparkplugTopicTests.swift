import Testing
@testable import Sparkplug

@Suite struct SparkplugTopicTests {
    @Test(arguments: [
        ("spBv1.0/G1/NBIRTH/E1", SparkplugMessageType.nbirth, "G1", "E1", String?.none),
        ("spBv1.0/G1/NDEATH/E1", .ndeath, "G1", "E1", nil),
        ("spBv1.0/G1/NDATA/E1", .ndata, "G1", "E1", nil),
        ("spBv1.0/G1/NCMD/E1", .ncmd, "G1", "E1", nil),
        ("spBv1.0/G1/DBIRTH/E1/D1", .dbirth, "G1", "E1", "D1"),
        ("spBv1.0/G1/DDEATH/E1/D1", .ddeath, "G1", "E1", "D1"),
        ("spBv1.0/G1/DDATA/E1/D1", .ddata, "G1", "E1", "D1"),
        ("spBv1.0/G1/DCMD/E1/D1", .dcmd, "G1", "E1", "D1"),
        ("spBv1.0/Plant Nord/NDATA/Pumpe ä 1", .ndata, "Plant Nord", "Pumpe ä 1", nil),
    ])
    func parsesEdgeTopics(topic: String, type: SparkplugMessageType, group: String, edge: String, device: String?) throws {
        let parsed = try #require(SparkplugTopic(topic))
        guard case .edge(let edgeTopic) = parsed else {
            Issue.record("not an edge topic: \(parsed)")
            return
        }
        #expect(edgeTopic.messageType == type)
        #expect(edgeTopic.groupID == group)
        #expect(edgeTopic.edgeNodeID == edge)
        #expect(edgeTopic.deviceID == device)
        #expect(edgeTopic.topicName == topic)
        #expect(parsed.topicName == topic)
        #expect(SparkplugEdgeTopic(type, groupID: group, edgeNodeID: edge, deviceID: device) == edgeTopic)
    }

    @Test func parsesStateTopic() {
        #expect(SparkplugTopic("spBv1.0/STATE/scada-1") == .state(hostID: "scada-1"))
        #expect(SparkplugTopic.state(hostID: "scada-1").topicName == "spBv1.0/STATE/scada-1")
        #expect(SparkplugTopic.stateTopicName(hostID: "h") == "spBv1.0/STATE/h")
        #expect(SparkplugTopic.stateTopicName(hostID: "a/b") == nil)
        #expect(SparkplugTopic.classify("spBv1.0/STATE") == .malformed(.tooFewLevels))
        #expect(SparkplugTopic.classify("spBv1.0/STATE/") == .malformed(.invalidID))
        #expect(SparkplugTopic.classify("spBv1.0/STATE/h/x") == .malformed(.tooManyLevels))
        // A group named STATE cannot exist: the level belongs to host applications.
        #expect(SparkplugTopic.classify("spBv1.0/STATE/NBIRTH/E1") == .malformed(.tooManyLevels))
    }

    @Test func nonSparkplugTopicsAreNil() {
        for topic in ["", "a/b", "sensors/1", "spBv1.0x/G/NDATA/E", "spAv1.0/G/NDATA/E", "STATE/host",
                      "$SYS/broker/uptime", "$sparkplugs/x", "spbv1.0/G/NDATA/E", "s", "$"] {
            #expect(SparkplugTopic.classify(topic) == .notSparkplug, "\(topic)")
            #expect(SparkplugTopic(topic) == nil, "\(topic)")
        }
    }

    @Test func malformedSparkplugTopics() {
        let cases: [(String, SparkplugTopicError)] = [
            ("spBv1.0", .tooFewLevels),
            ("spBv1.0/", .tooFewLevels),
            ("spBv1.0/G1", .tooFewLevels),
            ("spBv1.0/G1/NBIRTH", .tooFewLevels),
            ("spBv1.0/G1/NBIRTH/E1/D1", .tooManyLevels),
            ("spBv1.0/G1/NDATA/E1/D1", .tooManyLevels),
            ("spBv1.0/G1/DBIRTH/E1", .tooFewLevels),
            ("spBv1.0/G1/DDATA/E1/D1/x", .tooManyLevels),
            ("spBv1.0/G1/NBIRTHX/E1", .unknownMessageType),
            ("spBv1.0/G1/nbirth/E1", .unknownMessageType),
            ("spBv1.0/G1/XDATA/E1", .unknownMessageType),
            ("spBv1.0/G1/STATE/host", .unknownMessageType),
            ("spBv1.0/G1/NDATA/", .invalidID),
            ("spBv1.0//NDATA/E1", .invalidID),
            ("spBv1.0/G1/DDATA/E1/", .invalidID),
            ("spBv1.0/G+/NDATA/E1", .invalidID),
            ("spBv1.0/G1/NDATA/E#", .invalidID),
        ]
        for (topic, error) in cases {
            #expect(SparkplugTopic.classify(topic) == .malformed(error), "\(topic)")
            #expect(SparkplugTopic(topic) == nil, "\(topic)")
        }
    }

    @Test func certificateTopics() throws {
        let nbirth = try #require(SparkplugEdgeTopic(.nbirth, groupID: "G1", edgeNodeID: "E1"))
        #expect(nbirth.certificateTopicName == "$sparkplug/certificates/spBv1.0/G1/NBIRTH/E1")
        let dbirth = try #require(SparkplugEdgeTopic(.dbirth, groupID: "G1", edgeNodeID: "E1", deviceID: "D1"))
        #expect(dbirth.certificateTopicName == "$sparkplug/certificates/spBv1.0/G1/DBIRTH/E1/D1")
        #expect(SparkplugEdgeTopic(.ndata, groupID: "G1", edgeNodeID: "E1")?.certificateTopicName == nil)

        #expect(SparkplugTopic("$sparkplug/certificates/spBv1.0/G1/NBIRTH/E1") == .certificate(nbirth))
        #expect(SparkplugTopic("$sparkplug/certificates/spBv1.0/G1/DBIRTH/E1/D1") == .certificate(dbirth))
        #expect(SparkplugTopic.certificate(dbirth).topicName == dbirth.certificateTopicName)
        // Everything else under $sparkplug/ is still the server's namespace.
        for topic in ["$sparkplug", "$sparkplug/", "$sparkplug/other", "$sparkplug/certificates",
                      "$sparkplug/certificates/spBv1.0/G1/NDATA/E1", "$sparkplug/certificates/spBv1.0/G1/NBIRTH",
                      "$sparkplug/certificates/spAv1.0/G1/NBIRTH/E1"] {
            #expect(SparkplugTopic(topic) == .serverNamespace, "\(topic)")
        }
    }

    @Test func edgeTopicInitValidates() {
        #expect(SparkplugEdgeTopic(.dbirth, groupID: "G", edgeNodeID: "E") == nil)
        #expect(SparkplugEdgeTopic(.nbirth, groupID: "G", edgeNodeID: "E", deviceID: "D") == nil)
        #expect(SparkplugEdgeTopic(.ndata, groupID: "", edgeNodeID: "E") == nil)
        #expect(SparkplugEdgeTopic(.ndata, groupID: "G", edgeNodeID: "a/b") == nil)
        #expect(SparkplugEdgeTopic(.ndata, groupID: "+", edgeNodeID: "E") == nil)
        #expect(SparkplugEdgeTopic(.ddata, groupID: "G", edgeNodeID: "E", deviceID: "#") == nil)
        #expect(SparkplugID.isValid("ok ü"))
        #expect(!SparkplugID.isValid(""))
    }

    @Test func messageTypeProperties() {
        #expect(SparkplugMessageType.allCases.filter(\.hasDeviceID) == [.dbirth, .ddeath, .ddata, .dcmd])
        #expect(SparkplugMessageType.allCases.filter(\.isCommand) == [.ncmd, .dcmd])
        #expect(SparkplugMessageType.allCases.filter(\.isBirth) == [.nbirth, .dbirth])
    }

    /// A topic that is not Sparkplug is answered from its first byte (whatever its length).
    @Test func longNonSparkplugTopic() {
        let topic = "x" + String(repeating: "/level", count: 10_000)
        #expect(SparkplugTopic.classify(topic) == .notSparkplug)
        let long = "spBv1.0/" + String(repeating: "g", count: 65_000) + "/NDATA/E"
        guard case .sparkplug(.edge(let edge)) = SparkplugTopic.classify(long) else {
            Issue.record("long group not parsed")
            return
        }
        #expect(edge.groupID.utf8.count == 65_000)
    }

    /// Topics that are not native Swift strings (bridged or lazily decoded) take the copying path.
    @Test func substringBackedTopic() {
        let topic = String("xxspBv1.0/G/NDATA/E".dropFirst(2))
        #expect(SparkplugTopic(topic) == .edge(SparkplugEdgeTopic(.ndata, groupID: "G", edgeNodeID: "E")!))
    }
}
