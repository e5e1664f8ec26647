import MQTTCodec
import NIOCore

/// Identifies a message in the durable store; unique across restarts.
public typealias MessageID = UInt64

/// Durable broker state (spec-level promise: a QoS 1/2 message is acknowledged only once it is
/// stored for every persistent session it must reach). Implemented by BastionStore (SQLite) and by
/// `InMemoryStore` for tests. Operations are applied in submission order; one `submit` call is
/// atomic; many calls may share one transaction and one fsync (group commit).
public protocol DurableStore: Sendable {
    /// Queues operations for the next commit. `completion` runs on an arbitrary thread once they
    /// are durable (per the configured durability), or with the error that prevented it.
    func submit(_ operations: [StoreOperation], completion: @escaping @Sendable (Result<Void, StoreError>) -> Void)
    /// Everything stored, read once at startup (after expired sessions and messages are purged).
    func load(now: WallClock) throws(StoreError) -> StoredBrokerState
    /// Flushes pending commits and closes the database.
    func close()
}

/// Wall-clock seconds since 1970, as stored (monotonic deadlines do not survive a restart).
public typealias WallClock = Double

public enum StoreOperation: Sendable {
    /// Creates or replaces a persistent session's record.
    case saveSession(StoredSessionRecord)
    /// Removes a session with its queue, inbound QoS 2 ids and pending will.
    case deleteSession(clientID: String)
    /// Stores a message body once; later `enqueue`s refer to it by id. Idempotent.
    /// `isNew`: the message was just routed and this is its first `putMessage`, so no stored
    /// delivery refers to it yet. The store may then settle within one commit the deliveries of it
    /// that are enqueued and finished in that commit, without writing them (or the body, if none
    /// is left).
    case putMessage(StoredMessage, isNew: Bool = false)
    /// A message is owed to a session (queued, or about to be sent).
    case enqueue(clientID: String, delivery: StoredDelivery)
    /// The message was sent with this packet identifier (kept for redelivery with the same id).
    case assignPacketID(clientID: String, messageID: MessageID, packetID: UInt16)
    /// QoS 2: PUBREC received, PUBREL sent; after a restart PUBREL is resent instead of PUBLISH.
    case markReleased(clientID: String, messageID: MessageID)
    /// Delivery finished (PUBACK / PUBCOMP) or dropped. The message body goes when unreferenced.
    case dequeue(clientID: String, messageID: MessageID)
    /// Inbound QoS 2: PUBREC sent (`true`) or PUBREL received (`false`).
    case inboundQoS2(clientID: String, packetID: UInt16, pending: Bool)
    case setRetained(StoredMessage)
    case clearRetained(topic: String)
    /// A will waiting for its delay while the session is offline; nil clears it.
    case setPendingWill(clientID: String, will: StoredMessage?, publishAt: WallClock?)
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The disk is full: QoS > 0 must stop being acknowledged until space returns.
    case diskFull(String)
    case io(String)
    /// The data directory cannot be used at startup (corrupt, unwritable): exit 2.
    case unusable(String)

    public var description: String {
        switch self {
        case .diskFull(let s): "disk full: \(s)"
        case .io(let s): "I/O error: \(s)"
        case .unusable(let s): "data directory unusable: \(s)"
        }
    }
}

/// A message body as stored. A class: a store operation carrying one is copied several times on
/// its way to the writer, and each copy is then one reference count instead of one per field.
public final class StoredMessage: Sendable, Equatable {
    public let id: MessageID
    public let topic: String
    public let payload: ByteBuffer
    public let qos: QoS
    public let retain: Bool
    public let properties: PublishProperties
    public let publisherClientID: String
    public let expiresAt: WallClock?

    public init(
        id: MessageID, topic: String, payload: ByteBuffer, qos: QoS, retain: Bool, properties: PublishProperties,
        publisherClientID: String, expiresAt: WallClock?
    ) {
        self.id = id
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.publisherClientID = publisherClientID
        self.expiresAt = expiresAt
    }

    public static func == (lhs: StoredMessage, rhs: StoredMessage) -> Bool {
        lhs.id == rhs.id && lhs.topic == rhs.topic && lhs.payload == rhs.payload && lhs.qos == rhs.qos
            && lhs.retain == rhs.retain && lhs.properties == rhs.properties
            && lhs.publisherClientID == rhs.publisherClientID && lhs.expiresAt == rhs.expiresAt
    }
}

/// One message owed to one session, in queue order.
public struct StoredDelivery: Sendable, Equatable {
    public var messageID: MessageID
    public var qos: QoS
    public var retain: Bool
    public var subscriptionIdentifiers: [UInt32]
    public var sharedFilter: String?
    /// Set once sent; nil while queued.
    public var packetID: UInt16?
    /// QoS 2 only: PUBREC received (PUBREL to resend after a restart).
    public var released: Bool

    public init(
        messageID: MessageID, qos: QoS, retain: Bool, subscriptionIdentifiers: [UInt32] = [], sharedFilter: String? = nil,
        packetID: UInt16? = nil, released: Bool = false
    ) {
        self.messageID = messageID
        self.qos = qos
        self.retain = retain
        self.subscriptionIdentifiers = subscriptionIdentifiers
        self.sharedFilter = sharedFilter
        self.packetID = packetID
        self.released = released
    }
}

public struct StoredSessionRecord: Sendable, Equatable {
    public var clientID: String
    public var expiryInterval: UInt32
    public var subscriptions: [Subscription]
    /// When the session went offline; nil while a client is connected.
    public var disconnectedAt: WallClock?
    /// The identity that owns the session (`SessionOwner`); empty when unknown.
    public var owner: String

    public init(clientID: String, expiryInterval: UInt32, subscriptions: [Subscription], disconnectedAt: WallClock?, owner: String = "") {
        self.clientID = clientID
        self.expiryInterval = expiryInterval
        self.subscriptions = subscriptions
        self.disconnectedAt = disconnectedAt
        self.owner = owner
    }
}

/// A session as loaded at startup.
public struct StoredSession: Sendable, Equatable {
    public var record: StoredSessionRecord
    /// In queue order (insertion order).
    public var deliveries: [StoredDelivery]
    public var inboundQoS2: [UInt16]
    public var pendingWill: StoredMessage?
    public var willPublishAt: WallClock?

    public init(record: StoredSessionRecord, deliveries: [StoredDelivery], inboundQoS2: [UInt16], pendingWill: StoredMessage?, willPublishAt: WallClock?) {
        self.record = record
        self.deliveries = deliveries
        self.inboundQoS2 = inboundQoS2
        self.pendingWill = pendingWill
        self.willPublishAt = willPublishAt
    }
}

public struct StoredBrokerState: Sendable {
    public var sessions: [StoredSession]
    /// Bodies referenced by the sessions' deliveries.
    public var messages: [MessageID: StoredMessage]
    public var retained: [StoredMessage]
    /// Larger than any stored id: where new ids start.
    public var nextMessageID: MessageID
    /// Wills still waiting for their delay when their session expired while the broker was down:
    /// the session's end is due for them (spec 3.1.3.2.2), so they are published at startup.
    /// Sorted by publisher; expired will messages are left out.
    public var endedSessionWills: [StoredMessage]

    public init(
        sessions: [StoredSession], messages: [MessageID: StoredMessage], retained: [StoredMessage], nextMessageID: MessageID,
        endedSessionWills: [StoredMessage] = []
    ) {
        self.sessions = sessions
        self.messages = messages
        self.retained = retained
        self.nextMessageID = nextMessageID
        self.endedSessionWills = endedSessionWills
    }
}
