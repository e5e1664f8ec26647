import NIOCore

/// Delivery metadata, parsed from the reply subject of a JetStream message:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` or, with a domain and
/// account hash, `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]`.
public struct JetStreamMetadata: Sendable, Hashable {
    public var domain: String?
    public var stream: String
    public var consumer: String
    /// How often this message has been delivered (1 on the first delivery).
    public var delivered: UInt64
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// Nanoseconds since 1970.
    public var timestamp: Int64
    /// Messages left for the consumer after this one.
    public var pending: UInt64

    public init?(replySubject: String) {
        let tokens = replySubject.split(separator: ".", omittingEmptySubsequences: false)
        guard tokens.count >= 9, tokens[0] == "$JS", tokens[1] == "ACK" else { return nil }
        let offset: Int
        if tokens.count == 9 {
            offset = 2
            domain = nil
        } else if tokens.count >= 11 {
            offset = 4
            domain = tokens[2] == "_" ? nil : String(tokens[2])
        } else {
            return nil
        }
        guard let delivered = UInt64(tokens[offset + 2]), let sseq = UInt64(tokens[offset + 3]),
              let cseq = UInt64(tokens[offset + 4]), let ts = Int64(tokens[offset + 5]),
              let pending = UInt64(tokens[offset + 6])
        else { return nil }
        stream = String(tokens[offset])
        consumer = String(tokens[offset + 1])
        self.delivered = delivered
        streamSequence = sseq
        consumerSequence = cseq
        timestamp = ts
        self.pending = pending
    }
}

/// A message delivered by a JetStream consumer, with its metadata and acknowledgements.
/// Acknowledgements are publishes: they never block and follow the connection's back-pressure.
public struct JetStreamMessage: Sendable {
    public let message: NATSMessage
    public let metadata: JetStreamMetadata
    let connection: NATSConnection

    init?(_ message: NATSMessage, connection: NATSConnection) {
        guard let reply = message.replyTo, let metadata = JetStreamMetadata(replySubject: reply) else { return nil }
        self.message = message
        self.metadata = metadata
        self.connection = connection
    }

    public var subject: String { message.subject }
    public var payload: ByteBuffer { message.payload }
    public var headers: NATSHeaders? { message.headers }

    public func ack() throws { try reply("+ACK") }

    /// Redeliver, after `delay` when given.
    public func nak(delay: Duration? = nil) throws {
        if let delay { try reply("-NAK {\"delay\": \(delay.nanoseconds)}") } else { try reply("-NAK") }
    }

    /// Never redeliver.
    public func term() throws { try reply("+TERM") }

    /// Still working on it: restarts the ack wait.
    public func inProgress() throws { try reply("+WPI") }

    /// Acknowledges and waits for the server to confirm it recorded the ack.
    public func ackSync(timeout: Duration? = nil) async throws {
        guard let replyTo = message.replyTo else { throw JetStreamError.notAJetStreamMessage }
        _ = try await connection.request(replyTo, payload: ByteBuffer(string: "+ACK"), timeout: timeout)
    }

    private func reply(_ body: String) throws {
        guard let replyTo = message.replyTo else { throw JetStreamError.notAJetStreamMessage }
        try connection.publish(replyTo, payload: ByteBuffer(string: body))
    }
}

/// A message read back from a stream by sequence or by subject.
public struct StoredMessage: Sendable, Hashable {
    public var subject: String
    public var sequence: UInt64
    public var headers: NATSHeaders?
    public var payload: ByteBuffer
    /// RFC 3339 time the server stored it.
    public var time: String?
}
