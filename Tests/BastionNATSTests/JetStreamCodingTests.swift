@testable import BastionNATS
import Foundation
import NIOCore
import NIOFoundationCompat
import Testing

private func json(_ value: some Encodable) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as! [String: Any]
}

@Suite("JetStream JSON")
struct JetStreamCodingTests {
    @Test func streamConfigEncodes() throws {
        var config = StreamConfig(name: "ORDERS", subjects: ["orders.>"])
        config.storage = .memory
        config.retention = .workqueue
        config.replicas = 3
        config.maxAge = .seconds(60)
        config.duplicateWindow = .seconds(30)
        config.discard = .new
        config.allowDirect = true
        config.maxMessagesPerSubject = 5
        let object = try json(config)
        #expect(object["name"] as? String == "ORDERS")
        #expect(object["subjects"] as? [String] == ["orders.>"])
        #expect(object["storage"] as? String == "memory")
        #expect(object["retention"] as? String == "workqueue")
        #expect(object["num_replicas"] as? Int == 3)
        #expect(object["max_age"] as? Int == 60_000_000_000)
        #expect(object["duplicate_window"] as? Int == 30_000_000_000)
        #expect(object["discard"] as? String == "new")
        #expect(object["allow_direct"] as? Bool == true)
        #expect(object["max_msgs_per_subject"] as? Int == 5)
        #expect(object["max_msgs"] as? Int == -1)
    }

    @Test func streamInfoDecodes() throws {
        let payload = ByteBuffer(string: """
        {"type":"io.nats.jetstream.api.v1.stream_create_response","config":{"name":"KV_b","subjects":["$KV.b.>"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":3,"max_msg_size":-1,"discard":"new","storage":"file","num_replicas":1,"duplicate_window":120000000000,"allow_direct":true,"allow_rollup_hdrs":true,"deny_delete":true,"sealed":false},"created":"2024-01-01T00:00:00Z","state":{"messages":2,"bytes":100,"first_seq":1,"first_ts":"x","last_seq":2,"last_ts":"y","consumer_count":0},"cluster":{"leader":"n1"}}
        """)
        let info = try JetStreamContext.decode(payload, as: StreamInfo.self)
        #expect(info.config.name == "KV_b")
        #expect(info.config.maxMessagesPerSubject == 3)
        #expect(info.config.discard == .new)
        #expect(info.config.duplicateWindow == .seconds(120))
        #expect(info.config.maxAge == nil)
        #expect(info.config.allowRollupHeaders && info.config.denyDelete && info.config.allowDirect)
        #expect(info.state.messages == 2)
        #expect(info.state.lastSequence == 2)
        #expect(info.cluster?.leader == "n1")
        // Round trip through our encoder keeps the configuration.
        let again = try JSONDecoder().decode(StreamConfig.self, from: JSONEncoder().encode(info.config))
        #expect(again == info.config)
    }

    @Test func apiErrorDecodes() {
        let payload = ByteBuffer(string: #"{"type":"io.nats.jetstream.api.v1.pub_ack_response","error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}"#)
        #expect(throws: JetStreamAPIError(code: 400, errorCode: 10071, description: "wrong last sequence: 3")) {
            try JetStreamContext.decode(payload, as: PubAck.self)
        }
    }

    @Test func pubAckDecodes() throws {
        let ack = try JetStreamContext.decode(ByteBuffer(string: #"{"stream":"S","seq":42,"duplicate":true}"#), as: PubAck.self)
        #expect(ack.stream == "S")
        #expect(ack.sequence == 42)
        #expect(ack.duplicate)
        let plain = try JetStreamContext.decode(ByteBuffer(string: #"{"stream":"S","seq":1}"#), as: PubAck.self)
        #expect(!plain.duplicate)
        #expect(throws: JetStreamError.self) { try JetStreamContext.decode(ByteBuffer(string: "nonsense"), as: PubAck.self) }
    }

    @Test func consumerConfigEncodes() throws {
        var config = ConsumerConfig(durableName: "worker")
        config.deliverPolicy = .byStartSequence(17)
        config.ackWait = .seconds(30)
        config.maxAckPending = 100
        config.filterSubject = "orders.eu"
        let object = try json(config)
        #expect(object["durable_name"] as? String == "worker")
        #expect(object["deliver_policy"] as? String == "by_start_sequence")
        #expect(object["opt_start_seq"] as? Int == 17)
        #expect(object["ack_policy"] as? String == "explicit")
        #expect(object["ack_wait"] as? Int == 30_000_000_000)
        #expect(object["max_ack_pending"] as? Int == 100)
        #expect(object["filter_subject"] as? String == "orders.eu")
        #expect(object["flow_control"] == nil)
        var ordered = ConsumerConfig()
        ordered.deliverPolicy = .lastPerSubject
        ordered.flowControl = true
        ordered.idleHeartbeat = .seconds(5)
        ordered.deliverSubject = "_INBOX.x"
        let o = try json(ordered)
        #expect(o["deliver_policy"] as? String == "last_per_subject")
        #expect(o["flow_control"] as? Bool == true)
        #expect(o["idle_heartbeat"] as? Int == 5_000_000_000)
        #expect(o["deliver_subject"] as? String == "_INBOX.x")
        #expect(o["durable_name"] == nil)
    }

    @Test func ackMetadata() throws {
        let v1 = try #require(JetStreamMetadata(replySubject: "$JS.ACK.ORDERS.worker.2.118.96.1700000000123456789.7"))
        #expect(v1.stream == "ORDERS")
        #expect(v1.consumer == "worker")
        #expect(v1.delivered == 2)
        #expect(v1.streamSequence == 118)
        #expect(v1.consumerSequence == 96)
        #expect(v1.timestamp == 1_700_000_000_123_456_789)
        #expect(v1.pending == 7)
        #expect(v1.domain == nil)
        let v2 = try #require(JetStreamMetadata(replySubject: "$JS.ACK.hub.ACCHASH.ORDERS.worker.1.5.4.1700000000000000000.0.r4nd0m"))
        #expect(v2.domain == "hub")
        #expect(v2.stream == "ORDERS")
        #expect(v2.streamSequence == 5)
        #expect(v2.consumerSequence == 4)
        #expect(v2.pending == 0)
        #expect(JetStreamMetadata(replySubject: "_INBOX.abc") == nil)
        #expect(JetStreamMetadata(replySubject: "$JS.ACK.S.c.x.1.1.1.1") == nil)
    }

    @Test func kvStreamConfigFollowsTheKVLayout() {
        let config = KeyValueBucket.streamConfig(KVConfiguration(bucket: "nodes", history: 5, ttl: .seconds(30), replicas: 3))
        #expect(config.name == "KV_nodes")
        #expect(config.subjects == ["$KV.nodes.>"])
        #expect(config.maxMessagesPerSubject == 5)
        #expect(config.maxAge == .seconds(30))
        #expect(config.duplicateWindow == .seconds(30))
        #expect(config.allowRollupHeaders && config.denyDelete && config.allowDirect)
        #expect(config.discard == .new)
        #expect(config.replicas == 3)
    }

    @Test func kvKeyRules() {
        for key in ["a", "a.b", "A-b_c/d=e", "0.1", "x.Y.z"] { #expect(KeyValueBucket.isValidKey(key, pattern: false), "\(key)") }
        for key in ["", ".a", "a.", "a..b", "a b", "a*", "a.>", "_kv.x", "ä", "a\r\n"] {
            #expect(!KeyValueBucket.isValidKey(key, pattern: false), "\(key)")
        }
        for pattern in [">", "a.*", "a.>", "*.b"] { #expect(KeyValueBucket.isValidKey(pattern, pattern: true), "\(pattern)") }
        #expect(!KeyValueBucket.isValidKey(">.a", pattern: true))
        #expect(throws: KVError.invalidBucketName("a.b")) { try KeyValueBucket.validateBucket("a.b") }
    }
}
