@testable import BastionCore
import MQTTCodec
import NIOCore
import NIOEmbedded
import Synchronization

func message(_ topic: String, _ payload: String = "x", qos: QoS = .atLeastOnce, retain: Bool = false, from publisher: String = "pub", expiresAt: NIODeadline? = nil) -> Message {
    Message(topic: topic, payload: ByteBuffer(string: payload), qos: qos, retain: retain, publisherClientID: publisher, expiresAt: expiresAt)
}

func subscription(_ filter: String, qos: QoS = .exactlyOnce, id: UInt32? = nil, noLocal: Bool = false, rap: Bool = false,
                  handling: SubscribePacket.RetainHandling = .sendOnSubscribe) -> Subscription {
    Subscription(filter: filter, options: .init(qos: qos, noLocal: noLocal, retainAsPublished: rap, retainHandling: handling), identifier: id)
}

/// A subscriber identity for the trie tests: a session handle that is nowhere.
func Subscriber(_ name: String) -> SessionHandle {
    SessionHandle(clientID: name, location: .ended, persistent: false, owner: "")
}

/// A stand-in for a connection in registry and router tests: records what it is given.
final class FakeConnection: ConnectionRef {
    let eventLoop: any EventLoop = EmbeddedEventLoop()
    let loopIndex: Int
    private let received = Mutex<[Delivery]>([])

    init(loopIndex: Int = 0) { self.loopIndex = loopIndex }

    func deliver(_ delivery: Delivery) { received.withLock { $0.append(delivery) } }
    var deliveries: [Delivery] { received.withLock { $0 } }
}
