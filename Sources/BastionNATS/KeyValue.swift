import Foundation
import NIOCore

/// Errors of the key-value layer.
public enum KVError: Error, Sendable, Hashable {
    case invalidBucketName(String)
    case invalidKey(String)
    case bucketNotFound(String)
    /// `create` found the key present (and not deleted).
    case keyExists(String)
    /// The key's latest revision is not the expected one (compare-and-set lost).
    case wrongLastRevision(key: String)
}

public struct KVEntry: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable { case put = "PUT", delete = "DEL", purge = "PURGE" }

    public var bucket: String
    public var key: String
    public var value: ByteBuffer
    /// The entry's stream sequence: what `update` expects.
    public var revision: UInt64
    public var operation: Operation
    /// For watched entries: how many more the watcher has to receive before it is caught up (0:
    /// this is the newest it knows of).
    public var delta: UInt64
}

public struct KVConfiguration: Sendable {
    public var bucket: String
    public var history: Int = 1
    /// nil: entries never expire.
    public var ttl: Duration?
    public var replicas: Int = 1
    public var storage: StreamConfig.Storage = .file
    public var maxValueSize: Int32 = -1
    public var maxBytes: Int64 = -1

    public init(bucket: String, history: Int = 1, ttl: Duration? = nil, replicas: Int = 1) {
        self.bucket = bucket
        self.history = history
        self.ttl = ttl
        self.replicas = replicas
    }
}

/// A key-value bucket on JetStream, as the NATS KV design lays it out: stream `KV_<bucket>` on
/// subjects `$KV.<bucket>.>`, one subject per key, history kept by `max_msgs_per_subject`, deletes
/// and purges as marker messages with a `KV-Operation` header.
public struct KeyValueBucket: Sendable {
    public let js: JetStreamContext
    public let bucket: String
    public let streamName: String
    let subjectPrefix: String
    let direct: Bool

    static let operationHeader = "KV-Operation"
    static let maxHistory = 64

    init(js: JetStreamContext, bucket: String, direct: Bool) {
        self.js = js
        self.bucket = bucket
        streamName = "KV_\(bucket)"
        subjectPrefix = "$KV.\(bucket)."
        self.direct = direct
    }

    // MARK: Bucket

    public static func create(_ config: KVConfiguration, js: JetStreamContext) async throws -> KeyValueBucket {
        try validateBucket(config.bucket)
        guard (1...maxHistory).contains(config.history) else { throw KVError.invalidBucketName("history must be 1...\(maxHistory)") }
        let stream = streamConfig(config)
        do {
            _ = try await js.createStream(stream)
        } catch let error as JetStreamAPIError where error.errorCode == JetStreamAPIError.streamNameInUse {
            // Created meanwhile by another node with another configuration: bring it in line.
            _ = try await js.updateStream(stream)
        }
        return KeyValueBucket(js: js, bucket: config.bucket, direct: true)
    }

    public static func create(bucket: String, replicas: Int = 1, history: Int = 1, ttl: Duration? = nil,
                              js: JetStreamContext) async throws -> KeyValueBucket {
        try await create(KVConfiguration(bucket: bucket, history: history, ttl: ttl, replicas: replicas), js: js)
    }

    public static func open(bucket: String, js: JetStreamContext) async throws -> KeyValueBucket {
        try validateBucket(bucket)
        do {
            let info = try await js.streamInfo("KV_\(bucket)")
            return KeyValueBucket(js: js, bucket: bucket, direct: info.config.allowDirect)
        } catch let error as JetStreamAPIError where error.errorCode == JetStreamAPIError.streamNotFound {
            throw KVError.bucketNotFound(bucket)
        }
    }

    public static func delete(bucket: String, js: JetStreamContext) async throws {
        try validateBucket(bucket)
        try await js.deleteStream("KV_\(bucket)")
    }

    static func streamConfig(_ config: KVConfiguration) -> StreamConfig {
        var stream = StreamConfig(name: "KV_\(config.bucket)", subjects: ["$KV.\(config.bucket).>"])
        stream.maxMessagesPerSubject = Int64(config.history)
        stream.maxAge = config.ttl
        stream.maxBytes = config.maxBytes
        stream.maxMessageSize = config.maxValueSize
        stream.storage = config.storage
        stream.replicas = config.replicas
        stream.allowRollupHeaders = true
        stream.denyDelete = true
        stream.allowDirect = true
        stream.discard = .new
        // The duplicate window may not exceed the age limit.
        let twoMinutes = Duration.seconds(120)
        if let ttl = config.ttl, ttl < twoMinutes { stream.duplicateWindow = ttl } else { stream.duplicateWindow = twoMinutes }
        return stream
    }

    // MARK: Names

    /// Bucket names: letters, digits, `_` and `-`.
    static func validateBucket(_ name: String) throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
            throw KVError.invalidBucketName(name)
        }
    }

    /// Keys: letters, digits and `-/_=.`, not starting or ending with `.`, no empty token, and not
    /// starting with `_kv` (reserved). Watch patterns may also use `*` and `>` tokens.
    static func validateKey(_ key: String, pattern: Bool = false) throws {
        guard isValidKey(key, pattern: pattern) else { throw KVError.invalidKey(key) }
    }

    static func isValidKey(_ key: String, pattern: Bool) -> Bool {
        guard !key.isEmpty, !key.hasPrefix("."), !key.hasSuffix("."), !key.contains(".."),
              !key.lowercased().hasPrefix("_kv")
        else { return false }
        let allowed = key.utf8.allSatisfy { b in
            isAlphanumeric(b) || "-/_=.".utf8.contains(b) || (pattern && (b == UInt8(ascii: "*") || b == UInt8(ascii: ">")))
        }
        guard allowed else { return false }
        if pattern { return Subjects.isValid(key, .subscribe) }
        return true
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    // MARK: Reads

    /// The key's current entry; nil when it never existed or its latest entry is a delete or purge
    /// (unless `includeDeleted`).
    public func get(_ key: String, includeDeleted: Bool = false) async throws -> KVEntry? {
        try Self.validateKey(key)
        guard let stored = try await js.getLastMessage(stream: streamName, subject: subjectPrefix + key, direct: direct) else {
            return nil
        }
        let entry = entry(key: key, stored.headers, stored.payload, revision: stored.sequence, delta: 0)
        if entry.operation != .put, !includeDeleted { return nil }
        return entry
    }

    /// The entry at a given revision of the key.
    public func get(_ key: String, revision: UInt64) async throws -> KVEntry? {
        try Self.validateKey(key)
        guard let stored = try await js.getMessage(stream: streamName, sequence: revision, direct: direct),
              stored.subject == subjectPrefix + key
        else { return nil }
        return entry(key: key, stored.headers, stored.payload, revision: stored.sequence, delta: 0)
    }

    func entry(key: String, _ headers: NATSHeaders?, _ value: ByteBuffer, revision: UInt64, delta: UInt64) -> KVEntry {
        let operation = headers?[Self.operationHeader].flatMap(KVEntry.Operation.init(rawValue:)) ?? .put
        return KVEntry(bucket: bucket, key: key, value: value, revision: revision, operation: operation, delta: delta)
    }

    // MARK: Writes

    /// Stores a value; returns its revision.
    @discardableResult
    public func put(_ key: String, _ value: ByteBuffer) async throws -> UInt64 {
        try Self.validateKey(key)
        return try await js.publish(subjectPrefix + key, payload: value).sequence
    }

    @discardableResult
    public func put(_ key: String, _ value: String) async throws -> UInt64 {
        try await put(key, ByteBuffer(string: value))
    }

    /// Stores a value only if the key has none: never written, deleted or purged. Throws
    /// `KVError.keyExists` otherwise.
    @discardableResult
    public func create(_ key: String, _ value: ByteBuffer) async throws -> UInt64 {
        do {
            return try await update(key, value, expectedRevision: 0)
        } catch KVError.wrongLastRevision {
            // The subject's last message may be a delete or purge marker: then the key is absent
            // and the create replaces the marker, still as a compare-and-set.
            if let latest = try await get(key, includeDeleted: true), latest.operation != .put {
                do {
                    return try await update(key, value, expectedRevision: latest.revision)
                } catch KVError.wrongLastRevision {
                    throw KVError.keyExists(key)
                }
            }
            throw KVError.keyExists(key)
        }
    }

    @discardableResult
    public func create(_ key: String, _ value: String) async throws -> UInt64 {
        try await create(key, ByteBuffer(string: value))
    }

    /// Compare-and-set: stores the value only if the key's latest revision is `expectedRevision`
    /// (0: the key was never written). Throws `KVError.wrongLastRevision` otherwise.
    @discardableResult
    public func update(_ key: String, _ value: ByteBuffer, expectedRevision: UInt64) async throws -> UInt64 {
        try Self.validateKey(key)
        var headers = NATSHeaders()
        headers[NATSHeaders.expectedLastSubjectSequence] = String(expectedRevision)
        return try await publishExpecting(key, headers: headers, value: value)
    }

    @discardableResult
    public func update(_ key: String, _ value: String, expectedRevision: UInt64) async throws -> UInt64 {
        try await update(key, ByteBuffer(string: value), expectedRevision: expectedRevision)
    }

    /// Marks the key deleted, keeping its history; with `expectedRevision`, only if that is its
    /// latest revision.
    @discardableResult
    public func delete(_ key: String, expectedRevision: UInt64? = nil) async throws -> UInt64 {
        try Self.validateKey(key)
        var headers = NATSHeaders()
        headers[Self.operationHeader] = KVEntry.Operation.delete.rawValue
        if let expectedRevision { headers[NATSHeaders.expectedLastSubjectSequence] = String(expectedRevision) }
        return try await publishExpecting(key, headers: headers, value: ByteBuffer())
    }

    /// Deletes the key and its history (a rollup leaves only the purge marker).
    @discardableResult
    public func purge(_ key: String, expectedRevision: UInt64? = nil) async throws -> UInt64 {
        try Self.validateKey(key)
        var headers = NATSHeaders()
        headers[Self.operationHeader] = KVEntry.Operation.purge.rawValue
        headers[NATSHeaders.rollup] = "sub"
        if let expectedRevision { headers[NATSHeaders.expectedLastSubjectSequence] = String(expectedRevision) }
        return try await publishExpecting(key, headers: headers, value: ByteBuffer())
    }

    private func publishExpecting(_ key: String, headers: NATSHeaders, value: ByteBuffer) async throws -> UInt64 {
        do {
            return try await js.publish(subjectPrefix + key, headers: headers, payload: value).sequence
        } catch let error as JetStreamAPIError where error.errorCode == JetStreamAPIError.wrongLastSequence {
            throw KVError.wrongLastRevision(key: key)
        }
    }

    // MARK: Watch

    /// The keys that currently hold a value.
    public func keys() async throws -> [String] {
        let consumer = try await js.orderedConsumer(stream: streamName, filterSubject: subjectPrefix + ">",
                                                    deliverPolicy: .lastPerSubject, headersOnly: true)
        defer { Task { await consumer.stop() } }
        guard consumer.initialPending > 0 else { return [] }
        var keys: [String] = []
        for try await message in consumer {
            let operation = message.headers?[Self.operationHeader]
            if operation == nil || operation == KVEntry.Operation.put.rawValue {
                keys.append(String(message.subject.dropFirst(subjectPrefix.utf8.count)))
            }
            if message.metadata.pending == 0 { break }
        }
        return keys
    }

    /// Watches keys matching `keyPattern` (`>` for all; `*` and `>` tokens as in subjects): first
    /// the current value of each key (or, with `includeHistory`, every kept revision), then every
    /// change as it happens, deletes and purges included as their operation. `KVEntry.delta` is 0
    /// on the entry that brings the watcher up to date; a bucket with no matching entries yields
    /// nothing until the first change (`KVWatcher.initiallyEmpty` tells).
    public func watch(_ keyPattern: String = ">", includeHistory: Bool = false, updatesOnly: Bool = false) async throws -> KVWatcher {
        try Self.validateKey(keyPattern, pattern: true)
        let policy: ConsumerConfig.DeliverPolicy = updatesOnly ? .new : includeHistory ? .all : .lastPerSubject
        let consumer = try await js.orderedConsumer(stream: streamName, filterSubject: subjectPrefix + keyPattern, deliverPolicy: policy)
        return KVWatcher(bucket: self, consumer: consumer)
    }
}

/// An AsyncSequence of `KVEntry` over an ordered consumer.
public struct KVWatcher: AsyncSequence, Sendable {
    public typealias Element = KVEntry
    let bucket: KeyValueBucket
    let consumer: OrderedConsumer

    public var initiallyEmpty: Bool { consumer.initialPending == 0 }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: OrderedConsumer.AsyncIterator
        let bucket: KeyValueBucket

        public mutating func next() async throws -> KVEntry? {
            guard let message = try await inner.next() else { return nil }
            return bucket.entry(message)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: consumer.makeAsyncIterator(), bucket: bucket)
    }

    public func next(timeout: Duration) async throws -> KVEntry? {
        try await consumer.next(timeout: timeout).map { bucket.entry($0) }
    }

    public func stop() async { await consumer.stop() }
}

extension KeyValueBucket {
    func entry(_ message: JetStreamMessage) -> KVEntry {
        let key = String(message.subject.dropFirst(subjectPrefix.utf8.count))
        return entry(key: key, message.headers, message.payload, revision: message.metadata.streamSequence, delta: message.metadata.pending)
    }
}
