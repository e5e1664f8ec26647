@testable import BastionNATS
import Foundation
import NIOCore
import Testing

// One 3-node cluster at a time: each costs three servers and JetStream's meta group.
@Suite("3-node JetStream cluster", .serialized)
struct ClusterIntegrationTests {
    @Test func failoverToAnotherNodeKeepsSubscriptions() async throws {
        try await withCluster { cluster in
            // Only the first node is configured: the others are learnt from INFO connect_urls.
            try await withConnection(cluster.configuration([0])) { nats in
                let events = nats.events()
                let sub = try await nats.subscribe("cluster.msgs")
                try await nats.flush()
                try await cluster.kill(0)
                let event = try await waitForEvent(events) { if case .reconnected = $0 { true } else { false } }
                guard case .reconnected(let url) = event else { return }
                #expect(url.port != cluster.ports[0])
                try nats.publish("cluster.msgs", payload: "after failover")
                #expect(try await sub.next(timeout: .seconds(10)).map { String(buffer: $0.payload) } == "after failover")
            }
        }
    }

    @Test func replicatedStreamAndKVSurviveANodeLoss() async throws {
        try await withCluster { cluster in
            try await withConnection(cluster.configuration()) { nats in
                let js = JetStreamContext(connection: nats, timeout: .seconds(10))
                var config = StreamConfig(name: "R3", subjects: ["r3.>"])
                config.replicas = 3
                let info = try await eventually { try await js.createStream(config) }
                #expect(info.config.replicas == 3)
                let ack = try await eventually { try await js.publish("r3.a", payload: "replicated") }
                #expect(ack.stream == "R3")

                let kv = try await eventually { try await KeyValueBucket.create(bucket: "cluster", replicas: 3, js: js) }
                let r1 = try await eventually { try await kv.put("leader", "n1") }

                // Lose the node this client is connected to: the client fails over, the
                // remaining two keep quorum.
                let connectedPort = try #require(await nats.serverInfo).port
                let victim = try #require(cluster.ports.firstIndex(of: connectedPort))
                try await cluster.kill(victim)

                let r2 = try await eventually(timeout: .seconds(60)) { () -> UInt64 in
                    do {
                        return try await kv.update("leader", "n2", expectedRevision: r1)
                    } catch KVError.wrongLastRevision {
                        // An earlier try may have been stored although its answer was lost in the failover.
                        guard let entry = try await kv.get("leader"), String(buffer: entry.value) == "n2" else {
                            throw KVError.wrongLastRevision(key: "leader")
                        }
                        return entry.revision
                    }
                }
                #expect(r2 > r1)
                // A KV bucket reads through direct get, which any replica may answer: a follower
                // that has not yet applied the update answers the old value until it catches up.
                let entry = try await eventually(timeout: .seconds(60)) { () -> KVEntry? in
                    let entry = try await kv.get("leader")
                    guard entry?.revision == r2 else { throw KVError.wrongLastRevision(key: "leader") }
                    return entry
                }
                #expect(entry.map { String(buffer: $0.value) } == "n2")
                let streamInfo = try await eventually(timeout: .seconds(60)) { try await js.streamInfo("R3") }
                #expect(streamInfo.state.messages == 1)
                #expect(await nats.serverInfo?.port != connectedPort)
            }
        }
    }
}
