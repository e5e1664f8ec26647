import BastionSecurity
import BastionServer
import Foundation
import Testing

@Suite struct SysTopicsTests {
    func stats() -> BrokerStatsSnapshot {
        var s = BrokerStatsSnapshot(version: "1.2.3", uptimeSeconds: 42)
        s.clientsConnected = 3
        s.clientsDisconnected = 2
        s.clientsMaximum = 7
        s.publishReceived = QoSCounts(qos0: 10, qos1: 5, qos2: 1)
        s.publishSent = QoSCounts(qos0: 20, qos1: 0, qos2: 0)
        s.bytesReceived = 1000
        s.bytesSent = 2000
        s.subscriptions = 9
        s.retainedMessages = 4
        s.storedMessages = 6
        return s
    }

    func value(_ messages: [SysTopicMessage], _ topic: String) -> String? {
        messages.first { $0.topic == topic }?.payload
    }

    @Test func usesMosquittoNamesAndFormats() {
        let m = SysTopics.snapshot(stats())
        #expect(value(m, "$SYS/broker/version") == "bastion version 1.2.3")
        #expect(value(m, "$SYS/broker/uptime") == "42 seconds")
        #expect(value(m, "$SYS/broker/clients/connected") == "3")
        #expect(value(m, "$SYS/broker/clients/disconnected") == "2")
        #expect(value(m, "$SYS/broker/clients/total") == "5")
        #expect(value(m, "$SYS/broker/clients/maximum") == "7")
        #expect(value(m, "$SYS/broker/messages/received") == "16")
        #expect(value(m, "$SYS/broker/messages/sent") == "20")
        #expect(value(m, "$SYS/broker/publish/messages/received") == "16")
        #expect(value(m, "$SYS/broker/bytes/received") == "1000")
        #expect(value(m, "$SYS/broker/bytes/sent") == "2000")
        #expect(value(m, "$SYS/broker/subscriptions/count") == "9")
        #expect(value(m, "$SYS/broker/retained messages/count") == "4")
        #expect(value(m, "$SYS/broker/store/messages/count") == "6")
        #expect(m.allSatisfy { $0.topic.hasPrefix("$SYS/broker/") })
        #expect(Set(m.map(\.topic)).count == m.count)
    }

    @Test func packetCountsWinOverPublishCountsWhenKnown() {
        var s = stats()
        s.packetsReceived = 100
        #expect(value(SysTopics.snapshot(s), "$SYS/broker/messages/received") == "100")
        #expect(value(SysTopics.snapshot(s), "$SYS/broker/publish/messages/received") == "16")
    }

    @Test func thePublisherSendsOnlyWhatChanged() {
        var publisher = SysTopicPublisher()
        let t0 = MonotonicInstant.origin
        let first = publisher.update(stats(), now: t0)
        #expect(value(first, "$SYS/broker/clients/connected") == "3")
        var next = stats()
        next.uptimeSeconds = 52
        next.clientsConnected = 4
        let second = publisher.update(next, now: t0 + .seconds(10))
        #expect(value(second, "$SYS/broker/uptime") == "52 seconds")
        #expect(value(second, "$SYS/broker/clients/connected") == "4")
        #expect(value(second, "$SYS/broker/bytes/received") == nil)
        #expect(value(second, "$SYS/broker/version") == nil)
    }

    @Test func loadAveragesFollowMosquittosFormula() throws {
        var load = SysLoadAverages()
        var s = stats()
        s.publishReceived = QoSCounts()
        _ = load.update(s, interval: .seconds(10))
        s.publishReceived = QoSCounts(qos0: 60)
        let out = load.update(s, interval: .seconds(60))
        // 60 messages in 60 s is 60/min; after one minute the 1-minute average is 60 * (1 - e^-1).
        let oneMinute = try #require(value(out, "$SYS/broker/load/publish/received/1min"))
        #expect(oneMinute == String(format: "%.2f", 60 * (1 - exp(-1.0))))
        #expect(value(out, "$SYS/broker/load/publish/received/15min") == String(format: "%.2f", 60 * (1 - exp(-60.0 / 900))))
    }

    @Test func alertPayloadIsTheAlertAsJSON() throws {
        let alert = Alert(kind: .connectionRate, count: 500, threshold: 100, window: .seconds(60))
        let payload = SysTopics.alertPayload(alert, timestamp: 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "alert")
        #expect(object["kind"] as? String == "connection_rate")
        #expect(object["count"] as? Int == 500)
        #expect(object["threshold"] as? Int == 100)
        #expect(object["window_seconds"] as? Int == 60)
        #expect(!payload.contains("\n"))
        #expect(SysTopics.alertsTopic == "$SYS/bastion/alerts")
    }
}
