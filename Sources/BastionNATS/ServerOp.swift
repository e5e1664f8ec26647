import NIOCore

/// A message delivered to a subscription. `payload` is a slice of the receive buffer (no copy).
public struct NATSMessage: Sendable, Hashable {
    public var subject: String
    public var sid: UInt64
    public var replyTo: String?
    public var headers: NATSHeaders?
    /// The status line of the headers block, when the server set one (no responders, JetStream
    /// heartbeats and flow control, pull request results).
    public var status: NATSStatus?
    public var payload: ByteBuffer

    public init(subject: String, sid: UInt64, replyTo: String? = nil, headers: NATSHeaders? = nil,
                status: NATSStatus? = nil, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.status = status
        self.payload = payload
    }

    /// Bytes this message holds in memory, as counted against a subscription's pending limit.
    var footprint: Int { payload.readableBytes + subject.utf8.count + 64 }
}

/// One operation from the server.
public enum ServerOp: Sendable, Hashable {
    case info(NATSServerInfo)
    case message(NATSMessage)
    case ping
    case pong
    case ok
    case error(String)
}
