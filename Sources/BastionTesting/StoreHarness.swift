import BastionCore
import BastionStore
import Foundation
import NIOCore

/// The two implementations the behaviour suite runs against.
public enum StoreKind: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory
    case sqlite

    public var description: String { rawValue }
}

/// A store under test plus what it takes to "restart" it: the SQLite store is closed and opened
/// again on the same directory, so every check that goes through `reopen().load` reads the disk.
public final class StoreHarness {
    public let kind: StoreKind
    public let directory: TemporaryDirectory
    public let options: SQLiteStore.Options
    public private(set) var store: any DurableStore

    public init(_ kind: StoreKind, options: (String) -> SQLiteStore.Options = { SQLiteStore.Options(directory: $0) }) throws {
        self.kind = kind
        directory = try TemporaryDirectory(prefix: "bastion-store-test")
        self.options = options(directory.path + "/data")
        switch kind {
        case .memory: store = InMemoryStore()
        case .sqlite: store = try SQLiteStore(options: self.options)
        }
    }

    public var sqlite: SQLiteStore? { store as? SQLiteStore }

    @discardableResult
    public func submit(_ operations: [StoreOperation]) async -> Result<Void, StoreError> {
        await store.submitAndWait(operations)
    }

    /// Submits and requires success.
    public func commit(_ operations: [StoreOperation]) async throws {
        try await submit(operations).get()
    }

    /// Closes and reopens (SQLite); the in-memory store just stays.
    @discardableResult
    public func reopen() throws -> any DurableStore {
        if kind == .sqlite {
            store.close()
            store = try SQLiteStore(options: options)
        }
        return store
    }

    /// What a restart at `now` sees.
    public func reload(now: WallClock = Date().timeIntervalSince1970) throws -> StoredBrokerState {
        try reopen().load(now: now)
    }

    public func storedMessageCount() throws -> Int {
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
    public func submitAndWait(_ operations: [StoreOperation]) async -> Result<Void, StoreError> {
        await withCheckedContinuation { continuation in
            submit(operations) { continuation.resume(returning: $0) }
        }
    }
}
