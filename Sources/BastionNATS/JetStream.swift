import Foundation
import NIOCore
import NIOFoundationCompat

/// JetStream over a connection: the JSON API on `$JS.API.…` by request/reply, publishes that wait
/// for the stream's acknowledgement, pull fetches and ordered consumers.
public struct JetStreamContext: Sendable {
    public let connection: NATSConnection
    /// `$JS.API`, or `$JS.<domain>.API` for a JetStream domain.
    public let apiPrefix: String
    public var timeout: Duration

    public init(connection: NATSConnection, domain: String? = nil, timeout: Duration = .seconds(5)) {
        self.connection = connection
        apiPrefix = domain.map { "$JS.\($0).API" } ?? "$JS.API"
        self.timeout = timeout
    }

    // MARK: API plumbing

    func api<Response: Decodable>(_ path: String, _ body: some Encodable, as type: Response.Type) async throws -> Response {
        let payload = try ByteBuffer(data: JSONEncoder().encode(body))
        return try await api(path, payload: payload, as: type)
    }

    func api<Response: Decodable>(_ path: String, payload: ByteBuffer = ByteBuffer(), as type: Response.Type) async throws -> Response {
        let response: NATSMessage
        do {
            response = try await connection.request("\(apiPrefix).\(path)", payload: payload, timeout: timeout)
        } catch NATSError.noResponders {
            throw JetStreamError.invalidResponse("JetStream is not enabled for this account (no responders on \(apiPrefix))")
        }
        return try Self.decode(response.payload, as: type)
    }

    static func decode<Response: Decodable>(_ payload: ByteBuffer, as type: Response.Type) throws -> Response {
        let decoder = JSONDecoder()
        if let envelope = try? decoder.decode(APIErrorEnvelope.self, from: payload), let error = envelope.error {
            throw error
        }
        do {
            return try decoder.decode(type, from: payload)
        } catch {
            throw JetStreamError.invalidResponse(String(buffer: payload))
        }
    }

    static func validateName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: ">") && $0 != 0x7F }) else {
            throw JetStreamError.invalidName(name)
        }
    }

    // MARK: Streams

    public func createStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name)
        return try await api("STREAM.CREATE.\(config.name)", config, as: StreamInfo.self)
    }

    public func updateStream(_ config: StreamConfig) async throws -> StreamInfo {
        try Self.validateName(config.name)
        return try await api("STREAM.UPDATE.\(config.name)", config, as: StreamInfo.self)
    }

    public func streamInfo(_ name: String) async throws -> StreamInfo {
        try Self.validateName(name)
        return try await api("STREAM.INFO.\(name)", as: StreamInfo.self)
    }

    public func deleteStream(_ name: String) async throws {
        try Self.validateName(name)
        _ = try await api("STREAM.DELETE.\(name)", as: SuccessResponse.self)
    }

    /// Removes messages: all of them, or those on `subject`, keeping the newest `keep`.
    public func purgeStream(_ name: String, subject: String? = nil, keep: UInt64? = nil) async throws {
        try Self.validateName(name)
        _ = try await api("STREAM.PURGE.\(name)", PurgeRequest(filter: subject, keep: keep), as: SuccessResponse.self)
    }

    // MARK: Publish

    /// Publishes and waits for the stream's acknowledgement. Set `Nats-Msg-Id` in `headers` for
    /// duplicate detection, `Nats-Expected-Last-Subject-Sequence` for compare-and-set; a failed
    /// expectation throws `JetStreamAPIError` (`wrongLastSequence`).
    public func publish(_ subject: String, headers: NATSHeaders? = nil, payload: ByteBuffer, timeout: Duration? = nil) async throws -> PubAck {
        let response: NATSMessage
        do {
            response = try await connection.request(subject, payload: payload, headers: headers, timeout: timeout ?? self.timeout)
        } catch NATSError.noResponders {
            throw JetStreamError.noStreamForSubject(subject)
        }
        return try Self.decode(response.payload, as: PubAck.self)
    }

    public func publish(_ subject: String, headers: NATSHeaders? = nil, payload: String) async throws -> PubAck {
        try await publish(subject, headers: headers, payload: ByteBuffer(string: payload))
    }

    // MARK: Consumers

    /// Creates (or, with the same configuration, returns) a consumer: durable when the config names
    /// one, else ephemeral. A pull consumer has no `deliverSubject`.
    public func createConsumer(stream: String, config: ConsumerConfig) async throws -> ConsumerInfo {
        try Self.validateName(stream)
        let request = CreateConsumerRequest(streamName: stream, config: config)
        if let durable = config.durableName {
            try Self.validateName(durable)
            return try await api("CONSUMER.DURABLE.CREATE.\(stream).\(durable)", request, as: ConsumerInfo.self)
        }
        return try await api("CONSUMER.CREATE.\(stream)", request, as: ConsumerInfo.self)
    }

    public func consumerInfo(stream: String, name: String) async throws -> ConsumerInfo {
        try Self.validateName(stream)
        try Self.validateName(name)
        return try await api("CONSUMER.INFO.\(stream).\(name)", as: ConsumerInfo.self)
    }

    public func deleteConsumer(stream: String, name: String) async throws {
        try Self.validateName(stream)
        try Self.validateName(name)
        _ = try await api("CONSUMER.DELETE.\(stream).\(name)", as: SuccessResponse.self)
    }

    /// Fetches up to `batch` messages from a pull consumer, waiting at most `expires` for them.
    /// Returns fewer (or none) when the consumer had no more within that time.
    public func fetch(stream: String, consumer: String, batch: Int, expires: Duration = .seconds(5)) async throws -> [JetStreamMessage] {
        try Self.validateName(stream)
        try Self.validateName(consumer)
        let subject = "\(apiPrefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)"
        let body = try ByteBuffer(data: JSONEncoder().encode(PullRequest(batch: batch, expires: expires.nanoseconds)))
        let connection = self.connection
        let messages = try await connection.flatSubmit { core in
            PullFetch.start(core: core, subject: subject, body: body, batch: batch, expires: expires)
        }
        return messages.compactMap { JetStreamMessage($0, connection: connection) }
    }

    // MARK: Reading messages

    /// Reads the message with sequence `sequence`. With `direct`, any replica answers
    /// (`$JS.API.DIRECT.GET`; the stream needs `allow_direct`), which is faster but may lag.
    public func getMessage(stream: String, sequence: UInt64, direct: Bool = false) async throws -> StoredMessage? {
        try await get(stream: stream, MessageGetRequest(seq: sequence), direct: direct)
    }

    /// Reads the newest message on `subject`.
    public func getLastMessage(stream: String, subject: String, direct: Bool = false) async throws -> StoredMessage? {
        try Subjects.validate(subject, as: .publish)
        return try await get(stream: stream, MessageGetRequest(lastBySubject: subject), direct: direct)
    }

    private func get(stream: String, _ request: MessageGetRequest, direct: Bool) async throws -> StoredMessage? {
        try Self.validateName(stream)
        let body = try ByteBuffer(data: JSONEncoder().encode(request))
        if direct {
            let response = try await connection.request("\(apiPrefix).DIRECT.GET.\(stream)", payload: body, timeout: timeout)
            if let status = response.status {
                if status.code == NATSStatus.noMessages { return nil }
                throw JetStreamAPIError(code: status.code, errorCode: 0, description: status.text)
            }
            guard let headers = response.headers, let subject = headers[NATSHeaders.subject],
                  let seq = headers[NATSHeaders.sequence].flatMap(UInt64.init)
            else { throw JetStreamError.invalidResponse("direct get without Nats-Subject/Nats-Sequence") }
            var own = NATSHeaders()
            for field in headers where !Self.directGetHeaders.contains(field.name.lowercased()) {
                own.append(field.name, field.value)
            }
            return StoredMessage(subject: subject, sequence: seq, headers: own.isEmpty ? nil : own,
                                 payload: response.payload, time: headers[NATSHeaders.timeStamp])
        }
        do {
            let response = try await api("STREAM.MSG.GET.\(stream)", payload: body, as: MessageGetResponse.self)
            let stored = response.message
            var headers: NATSHeaders?
            if let hdrs = stored.hdrs, let data = Data(base64Encoded: hdrs), !data.isEmpty {
                let parsed = try HeaderCoding.parse(ByteBuffer(data: data))
                headers = parsed.0.isEmpty ? nil : parsed.0
            }
            let payload = stored.data.flatMap { Data(base64Encoded: $0) }.map { ByteBuffer(data: $0) } ?? ByteBuffer()
            return StoredMessage(subject: stored.subject, sequence: stored.seq, headers: headers, payload: payload, time: stored.time)
        } catch let error as JetStreamAPIError where error.errorCode == JetStreamAPIError.messageNotFound {
            return nil
        }
    }

    private static let directGetHeaders: Set<String> = ["nats-stream", "nats-sequence", "nats-time-stamp", "nats-subject", "nats-last-sequence"]
}

/// One pull request on its own inbox, collected on the event loop: ends when the batch is full,
/// when the server reports no more messages (404/408/409 status) or after `expires` plus a margin.
final class PullFetch {
    private var collected: [NATSMessage] = []
    private var sid: UInt64?
    private var done = false
    private let promise: EventLoopPromise<[NATSMessage]>
    private let batch: Int

    private init(promise: EventLoopPromise<[NATSMessage]>, batch: Int) {
        self.promise = promise
        self.batch = batch
    }

    static func start(core: ConnectionCore, subject: String, body: ByteBuffer, batch: Int, expires: Duration) -> EventLoopFuture<[NATSMessage]> {
        let fetch = PullFetch(promise: core.eventLoop.makePromise(), batch: batch)
        let inbox = Inbox.new()
        do {
            let record = try core.addSubscription(subject: inbox, queue: nil, delivery: .loop { [unowned core] message in
                fetch.received(message, core: core)
            })
            fetch.sid = record.sid
            if try core.outbound.publish(subject: subject, reply: inbox, headers: nil, payload: body) {
                core.drainOutbound()
            }
        } catch {
            fetch.finish(core: core, error: error)
            return fetch.promise.futureResult
        }
        let bound = NIOLoopBound((fetch, core), eventLoop: core.eventLoop)
        core.eventLoop.scheduleTask(in: (expires + .seconds(1)).timeAmount) {
            let (fetch, core) = bound.value
            fetch.finish(core: core, error: nil)
        }
        return fetch.promise.futureResult
    }

    private func received(_ message: NATSMessage, core: ConnectionCore) {
        guard !done else { return }
        if let status = message.status {
            // 100: heartbeat; 404 no messages, 408 request expired, 409 consumer limits: the end.
            if status.code == NATSStatus.controlMessage { return }
            finish(core: core, error: nil)
            return
        }
        collected.append(message)
        if collected.count >= batch { finish(core: core, error: nil) }
    }

    private func finish(core: ConnectionCore, error: (any Error)?) {
        guard !done else { return }
        done = true
        if let sid { core.removeSubscription(sid) }
        if let error { promise.fail(error) } else { promise.succeed(collected) }
    }
}
