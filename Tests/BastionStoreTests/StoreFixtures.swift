import BastionCore
import BastionStore
import Foundation
import MQTTCodec
import NIOCore
import Synchronization

/// The two implementations the behaviour suite runs against.
enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case sqlite

    var description: String { rawValue }
}

/// A store under test plus what it takes to "restart" it: the SQLite store is closed and opened
/// again on the same directory, so every check that goes through `reopen().load` reads the disk.
final class StoreHarness {
    let kind: StoreKind
    let directory: TemporaryDirectory
    let options: SQLiteStore.Options
    private(set) var store: any DurableStore

    init(_ kind: StoreKind, options: (String) -> SQLiteStore.Options = { SQLiteStore.Options(directory: $0) }) throws {
        self.kind = kind
        directory = try TemporaryDirectory()
        self.options = options(directory.path + "/data")
        switch kind {
        case .memory: store = InMemoryStore()
        case .sqlite: store = try SQLiteStore(options: self.options)
        }
    }

    var sqlite: SQLiteStore? { store as? SQLiteStore }

    @discardableResult
    func submit(_ operations: [StoreOperation]) async -> Result<Void, StoreError> {
        await store.submitAndWait(operations)
    }

    /// Submits and requires success.
    func commit(_ operations: [StoreOperation]) async throws {
        try await submit(operations).get()
    }

    /// Closes and reopens (SQLite); the in-memory store just stays.
    @discardableResult
    func reopen() throws -> any DurableStore {
        if kind == .sqlite {
            store.close()
            store = try SQLiteStore(options: options)
        }
        return store
    }

    /// What a restart at `now` sees.
    func reload(now: WallClock = Date().timeIntervalSince1970) throws -> StoredBrokerState {
        try reopen().load(now: now)
    }

    func storedMessageCount() throws -> Int {
        switch store {
        case let store as SQLiteStore: try store.storedMessageCount()
        case let store as InMemoryStore: store.storedMessageCount
        default: -1
        }
    }

    deinit {
        store.close()
    }
}

extension DurableStore {
    func submitAndWait(_ operations: [StoreOperation]) async -> Result<Void, StoreError> {
        await withCheckedContinuation { continuation in
            submit(operations) { continuation.resume(returning: $0) }
        }
    }
}

/// A directory removed at deinit.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/bastion-store-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

// MARK: - Sample values

enum Sample {
    static func payload(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func message(
        _ id: MessageID, topic: String = "sensors/1", payload: String = "hello", qos: QoS = .atLeastOnce,
        retain: Bool = false, expiresAt: WallClock? = nil, richProperties: Bool = false
    ) -> StoredMessage {
        var properties = PublishProperties()
        if richProperties {
            properties.payloadFormatIndicator = 1
            properties.messageExpiryInterval = 3600
            properties.responseTopic = "replies/\(id)"
            properties.correlationData = ByteBuffer(bytes: [0, 1, 2, 255])
            properties.userProperties = [UserProperty(name: "k", value: "v"), UserProperty(name: "k", value: "w")]
            properties.contentType = "application/json"
        }
        return StoredMessage(
            id: id, topic: topic, payload: self.payload(payload), qos: qos, retain: retain, properties: properties,
            publisherClientID: "publisher-\(id)", expiresAt: expiresAt)
    }

    static func delivery(_ id: MessageID, qos: QoS = .atLeastOnce) -> StoredDelivery {
        StoredDelivery(messageID: id, qos: qos, retain: false)
    }

    static func session(
        _ clientID: String, expiry: UInt32 = 3600, disconnectedAt: WallClock? = nil, subscriptions: [Subscription] = []
    ) -> StoredSessionRecord {
        StoredSessionRecord(clientID: clientID, expiryInterval: expiry, subscriptions: subscriptions, disconnectedAt: disconnectedAt)
    }

    static let subscriptions: [Subscription] = [
        Subscription(filter: "sensors/+/temperature", options: .init(qos: .atLeastOnce)),
        Subscription(
            filter: "$share/group/jobs/#",
            options: .init(qos: .exactlyOnce, noLocal: true, retainAsPublished: true, retainHandling: .doNotSend),
            identifier: 268_435_455),
        Subscription(filter: "ünïcode/ℹ︎", options: .init(qos: .atMostOnce, retainHandling: .sendIfNew), identifier: 7),
    ]
}

/// Collects completions from many threads.
final class CompletionLog: Sendable {
    private let results = Mutex<[Int: Result<Void, StoreError>]>([:])

    func record(_ index: Int, _ result: Result<Void, StoreError>) {
        results.withLock { $0[index] = result }
    }

    var count: Int { results.withLock { $0.count } }
    var failures: [Int: StoreError] {
        results.withLock { results in
            results.compactMapValues { result in
                if case .failure(let error) = result { return error }
                return nil
            }
        }
    }
}
