import Foundation

// The JSON documents of the JetStream API (`$JS.API.…`). Durations travel as nanoseconds; decoding
// tolerates fields that newer or older servers add or leave out.

/// An error the JetStream API returned: `{"error": {"code": 400, "err_code": 10071, "description": …}}`.
public struct JetStreamAPIError: Error, Sendable, Hashable, Decodable, CustomStringConvertible {
    public var code: Int
    public var errorCode: Int
    public var errorDescription: String

    enum CodingKeys: String, CodingKey { case code, errorCode = "err_code", errorDescription = "description" }

    public init(code: Int, errorCode: Int, description: String) {
        self.code = code
        self.errorCode = errorCode
        errorDescription = description
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        code = try c.decodeIfPresent(Int.self, forKey: .code) ?? 0
        errorCode = try c.decodeIfPresent(Int.self, forKey: .errorCode) ?? 0
        errorDescription = try c.decodeIfPresent(String.self, forKey: .errorDescription) ?? ""
    }

    public var description: String { "JetStream error \(code)/\(errorCode): \(errorDescription)" }

    public static let streamNotFound = 10059
    public static let consumerNotFound = 10014
    public static let messageNotFound = 10037
    public static let streamNameInUse = 10058
    public static let wrongLastSequence = 10071
    public static let wrongLastMessageID = 10070
    public static let streamWrongExpectedStream = 10060
}

/// Errors of the JetStream layer that are not the API's own.
public enum JetStreamError: Error, Sendable, Hashable {
    /// No stream listens on the subject (the publish met no responders).
    case noStreamForSubject(String)
    case invalidResponse(String)
    case invalidName(String)
    case notAJetStreamMessage
}

struct APIErrorEnvelope: Decodable {
    var error: JetStreamAPIError?
}

extension KeyedDecodingContainer {
    func nanoseconds(_ key: Key) throws -> Duration? {
        guard let value = try decodeIfPresent(Int64.self, forKey: key), value > 0 else { return nil }
        return .nanoseconds(value)
    }
}

extension KeyedEncodingContainer {
    mutating func encodeNanoseconds(_ value: Duration?, forKey key: Key) throws {
        if let value { try encode(value.nanoseconds, forKey: key) }
    }
}

public struct StreamConfig: Sendable, Hashable, Codable {
    public enum Retention: String, Sendable, Codable { case limits, interest, workqueue }
    public enum Storage: String, Sendable, Codable { case file, memory }
    public enum Discard: String, Sendable, Codable { case old, new }

    public var name: String
    public var description: String?
    public var subjects: [String]
    public var retention: Retention = .limits
    public var maxConsumers: Int = -1
    public var maxMessages: Int64 = -1
    public var maxBytes: Int64 = -1
    /// nil: no age limit.
    public var maxAge: Duration?
    public var maxMessagesPerSubject: Int64 = -1
    public var maxMessageSize: Int32 = -1
    public var storage: Storage = .file
    public var discard: Discard = .old
    public var replicas: Int = 1
    public var noAck = false
    /// nil: the server's default (2 minutes).
    public var duplicateWindow: Duration?
    public var allowRollupHeaders = false
    public var denyDelete = false
    public var denyPurge = false
    public var allowDirect = false

    public init(name: String, subjects: [String]) {
        self.name = name
        self.subjects = subjects
    }

    enum CodingKeys: String, CodingKey {
        case name, description, subjects, retention, maxConsumers = "max_consumers", maxMessages = "max_msgs"
        case maxBytes = "max_bytes", maxAge = "max_age", maxMessagesPerSubject = "max_msgs_per_subject"
        case maxMessageSize = "max_msg_size", storage, discard, replicas = "num_replicas", noAck = "no_ack"
        case duplicateWindow = "duplicate_window", allowRollupHeaders = "allow_rollup_hdrs"
        case denyDelete = "deny_delete", denyPurge = "deny_purge", allowDirect = "allow_direct"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? []
        retention = try c.decodeIfPresent(Retention.self, forKey: .retention) ?? .limits
        maxConsumers = try c.decodeIfPresent(Int.self, forKey: .maxConsumers) ?? -1
        maxMessages = try c.decodeIfPresent(Int64.self, forKey: .maxMessages) ?? -1
        maxBytes = try c.decodeIfPresent(Int64.self, forKey: .maxBytes) ?? -1
        maxAge = try c.nanoseconds(.maxAge)
        maxMessagesPerSubject = try c.decodeIfPresent(Int64.self, forKey: .maxMessagesPerSubject) ?? -1
        maxMessageSize = try c.decodeIfPresent(Int32.self, forKey: .maxMessageSize) ?? -1
        storage = try c.decodeIfPresent(Storage.self, forKey: .storage) ?? .file
        discard = try c.decodeIfPresent(Discard.self, forKey: .discard) ?? .old
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
        noAck = try c.decodeIfPresent(Bool.self, forKey: .noAck) ?? false
        duplicateWindow = try c.nanoseconds(.duplicateWindow)
        allowRollupHeaders = try c.decodeIfPresent(Bool.self, forKey: .allowRollupHeaders) ?? false
        denyDelete = try c.decodeIfPresent(Bool.self, forKey: .denyDelete) ?? false
        denyPurge = try c.decodeIfPresent(Bool.self, forKey: .denyPurge) ?? false
        allowDirect = try c.decodeIfPresent(Bool.self, forKey: .allowDirect) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(subjects, forKey: .subjects)
        try c.encode(retention, forKey: .retention)
        try c.encode(maxConsumers, forKey: .maxConsumers)
        try c.encode(maxMessages, forKey: .maxMessages)
        try c.encode(maxBytes, forKey: .maxBytes)
        try c.encode(maxAge?.nanoseconds ?? 0, forKey: .maxAge)
        try c.encode(maxMessagesPerSubject, forKey: .maxMessagesPerSubject)
        try c.encode(maxMessageSize, forKey: .maxMessageSize)
        try c.encode(storage, forKey: .storage)
        try c.encode(discard, forKey: .discard)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(noAck, forKey: .noAck)
        try c.encodeNanoseconds(duplicateWindow, forKey: .duplicateWindow)
        try c.encode(allowRollupHeaders, forKey: .allowRollupHeaders)
        try c.encode(denyDelete, forKey: .denyDelete)
        try c.encode(denyPurge, forKey: .denyPurge)
        try c.encode(allowDirect, forKey: .allowDirect)
    }
}

public struct StreamState: Sendable, Hashable, Decodable {
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var consumerCount: Int

    enum CodingKeys: String, CodingKey {
        case messages, bytes, firstSequence = "first_seq", lastSequence = "last_seq", consumerCount = "consumer_count"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        messages = try c.decodeIfPresent(UInt64.self, forKey: .messages) ?? 0
        bytes = try c.decodeIfPresent(UInt64.self, forKey: .bytes) ?? 0
        firstSequence = try c.decodeIfPresent(UInt64.self, forKey: .firstSequence) ?? 0
        lastSequence = try c.decodeIfPresent(UInt64.self, forKey: .lastSequence) ?? 0
        consumerCount = try c.decodeIfPresent(Int.self, forKey: .consumerCount) ?? 0
    }
}

public struct ClusterInfo: Sendable, Hashable, Decodable {
    public struct Replica: Sendable, Hashable, Decodable {
        public var name: String
        public var current: Bool?
    }
    public var name: String?
    public var leader: String?
    public var replicas: [Replica]?
}

public struct StreamInfo: Sendable, Hashable, Decodable {
    public var config: StreamConfig
    public var state: StreamState
    public var cluster: ClusterInfo?
}

/// The server's answer to a JetStream publish.
public struct PubAck: Sendable, Hashable, Decodable {
    public var stream: String
    public var sequence: UInt64
    public var duplicate: Bool
    public var domain: String?

    enum CodingKeys: String, CodingKey { case stream, sequence = "seq", duplicate, domain }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
        domain = try c.decodeIfPresent(String.self, forKey: .domain)
    }
}

public struct ConsumerConfig: Sendable, Hashable, Encodable {
    public enum DeliverPolicy: Sendable, Hashable {
        case all, last, new, lastPerSubject
        case byStartSequence(UInt64)
    }
    public enum AckPolicy: String, Sendable, Codable { case none, all, explicit }

    /// Durable consumers keep their position across client restarts; nil makes an ephemeral one.
    public var durableName: String?
    public var description: String?
    public var deliverPolicy: DeliverPolicy = .all
    public var ackPolicy: AckPolicy = .explicit
    public var ackWait: Duration?
    public var maxDeliver: Int?
    public var filterSubject: String?
    public var maxAckPending: Int?
    public var maxWaiting: Int?
    /// Set for a push consumer: the server sends messages to this subject.
    public var deliverSubject: String?
    public var flowControl = false
    public var idleHeartbeat: Duration?
    public var headersOnly = false
    public var memoryStorage = false
    public var replicas: Int?
    public var inactiveThreshold: Duration?

    public init(durableName: String? = nil) { self.durableName = durableName }

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", description, deliverPolicy = "deliver_policy", optStartSeq = "opt_start_seq"
        case ackPolicy = "ack_policy", ackWait = "ack_wait", maxDeliver = "max_deliver", filterSubject = "filter_subject"
        case replayPolicy = "replay_policy", maxAckPending = "max_ack_pending", maxWaiting = "max_waiting"
        case deliverSubject = "deliver_subject", flowControl = "flow_control", idleHeartbeat = "idle_heartbeat"
        case headersOnly = "headers_only", memoryStorage = "mem_storage", replicas = "num_replicas"
        case inactiveThreshold = "inactive_threshold"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(durableName, forKey: .durableName)
        try c.encodeIfPresent(description, forKey: .description)
        switch deliverPolicy {
        case .all: try c.encode("all", forKey: .deliverPolicy)
        case .last: try c.encode("last", forKey: .deliverPolicy)
        case .new: try c.encode("new", forKey: .deliverPolicy)
        case .lastPerSubject: try c.encode("last_per_subject", forKey: .deliverPolicy)
        case .byStartSequence(let seq):
            try c.encode("by_start_sequence", forKey: .deliverPolicy)
            try c.encode(seq, forKey: .optStartSeq)
        }
        try c.encode(ackPolicy, forKey: .ackPolicy)
        try c.encodeNanoseconds(ackWait, forKey: .ackWait)
        try c.encodeIfPresent(maxDeliver, forKey: .maxDeliver)
        try c.encodeIfPresent(filterSubject, forKey: .filterSubject)
        try c.encode("instant", forKey: .replayPolicy)
        try c.encodeIfPresent(maxAckPending, forKey: .maxAckPending)
        try c.encodeIfPresent(maxWaiting, forKey: .maxWaiting)
        try c.encodeIfPresent(deliverSubject, forKey: .deliverSubject)
        if flowControl { try c.encode(true, forKey: .flowControl) }
        try c.encodeNanoseconds(idleHeartbeat, forKey: .idleHeartbeat)
        if headersOnly { try c.encode(true, forKey: .headersOnly) }
        if memoryStorage { try c.encode(true, forKey: .memoryStorage) }
        try c.encodeIfPresent(replicas, forKey: .replicas)
        try c.encodeNanoseconds(inactiveThreshold, forKey: .inactiveThreshold)
    }
}

public struct SequenceInfo: Sendable, Hashable, Decodable {
    public var consumerSequence: UInt64
    public var streamSequence: UInt64
    enum CodingKeys: String, CodingKey { case consumerSequence = "consumer_seq", streamSequence = "stream_seq" }
}

public struct ConsumerInfo: Sendable, Hashable, Decodable {
    public var stream: String
    public var name: String
    public var delivered: SequenceInfo?
    public var ackFloor: SequenceInfo?
    public var numAckPending: Int
    public var numRedelivered: Int
    public var numPending: UInt64

    enum CodingKeys: String, CodingKey {
        case stream = "stream_name", name, delivered, ackFloor = "ack_floor", numAckPending = "num_ack_pending"
        case numRedelivered = "num_redelivered", numPending = "num_pending"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        name = try c.decode(String.self, forKey: .name)
        delivered = try c.decodeIfPresent(SequenceInfo.self, forKey: .delivered)
        ackFloor = try c.decodeIfPresent(SequenceInfo.self, forKey: .ackFloor)
        numAckPending = try c.decodeIfPresent(Int.self, forKey: .numAckPending) ?? 0
        numRedelivered = try c.decodeIfPresent(Int.self, forKey: .numRedelivered) ?? 0
        numPending = try c.decodeIfPresent(UInt64.self, forKey: .numPending) ?? 0
    }
}

struct CreateConsumerRequest: Encodable {
    var streamName: String
    var config: ConsumerConfig
    enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
}

struct PullRequest: Encodable {
    var batch: Int
    var expires: Int64?
    var noWait: Bool?
    enum CodingKeys: String, CodingKey { case batch, expires, noWait = "no_wait" }
}

struct MessageGetRequest: Encodable {
    var seq: UInt64?
    var lastBySubject: String?
    enum CodingKeys: String, CodingKey { case seq, lastBySubject = "last_by_subj" }
}

struct MessageGetResponse: Decodable {
    struct Stored: Decodable {
        var subject: String
        var seq: UInt64
        var hdrs: String?
        var data: String?
        var time: String?
    }
    var message: Stored
}

struct SuccessResponse: Decodable {
    var success: Bool?
}

struct PurgeRequest: Encodable {
    var filter: String?
    var keep: UInt64?
}
