import BastionCore
import NIOCore

extension Broker {
    static let version = "0.1.0"

    /// The counters `$SYS` and `/metrics` are derived from.
    func snapshot() -> BrokerStatsSnapshot {
        var s = BrokerStatsSnapshot(version: "bastion \(Self.version)", uptimeSeconds: Int((NIODeadline.now() - startedAt).nanoseconds / 1_000_000_000))
        s.clientsConnected = stats.clientsConnected.load(ordering: .relaxed)
        s.clientsMaximum = stats.clientsMaximum.load(ordering: .relaxed)
        s.clientsExpired = stats.sessionsExpired.load(ordering: .relaxed)
        s.clientsDisconnected = max(0, registry.count - s.clientsConnected)
        s.connectionsTotal = stats.connectionsTotal.load(ordering: .relaxed)
        var received = QoSCounts(), sent = QoSCounts()
        for t in traffic {
            received.qos0 += t.publishReceived0.load(ordering: .relaxed)
            received.qos1 += t.publishReceived1.load(ordering: .relaxed)
            received.qos2 += t.publishReceived2.load(ordering: .relaxed)
            sent.qos0 += t.publishSent0.load(ordering: .relaxed)
            sent.qos1 += t.publishSent1.load(ordering: .relaxed)
            sent.qos2 += t.publishSent2.load(ordering: .relaxed)
            for reason in DropReason.allCases { s.dropped[reason.rawValue] += t.dropped(reason) }
            s.bytesReceived += t.bytesReceived.load(ordering: .relaxed)
            s.bytesSent += t.bytesSent.load(ordering: .relaxed)
        }
        s.publishReceived = received
        s.publishSent = sent
        s.subscriptions = stats.subscriptions.load(ordering: .relaxed)
        s.retainedMessages = retained.count
        s.storeHealthy = storeHealthy
        return s
    }

    /// False while the durable store cannot commit (disk full, I/O errors).
    var storeHealthy: Bool { stats.storeFailing.load(ordering: .relaxed) == false }
}

extension Broker {
    /// Publishes a `$SYS` topic the server owns (QoS 0; retained for the statistics).
    func publishSys(topic: String, payload: String, retain: Bool, on loop: any EventLoop) {
        let run = {
            let message = Message(
                id: self.worker(on: loop).nextMessageID(), topic: topic, payload: ByteBuffer(string: payload), qos: .atMostOnce,
                retain: retain, publisherClientID: "$SYS")
            // Statistics are not worth a disk write; they are recomputed after a restart.
            if retain { self.retained.apply(message) }
            let worker = self.worker(on: loop)
            worker.route(message, from: nil)
            worker.flush()
        }
        if loop.inEventLoop { run() } else { loop.execute(run) }
    }
}
