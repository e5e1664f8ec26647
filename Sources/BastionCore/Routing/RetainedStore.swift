import MQTTCodec
import NIOCore
import Synchronization

/// Retained messages, one per topic (spec 3.3.1.3). One owner for the whole broker; writes are rare
/// next to deliveries, and reads happen at SUBSCRIBE time, so a mutex with short sections suffices.
public final class RetainedStore: Sendable {
    public enum StoreResult: Equatable, Sendable {
        case stored
        case cleared
        /// Over `maximumRetainedMessages` or `maximumRetainedBytes` (topic, properties and payload),
        /// or over the publishing identity's share of them: not kept.
        case refused
    }

    private struct Usage {
        var count = 0
        var bytes = 0
    }

    private struct State {
        var root = RetainedNode()
        var total = Usage()
        /// Per publishing identity, so one account cannot take the whole budget from the others.
        var owners: [String: Usage] = [:]

        mutating func add(_ message: Message, owner: String?, sign: Int) {
            let bytes = RetainedStore.footprint(of: message)
            total.count += sign
            total.bytes += sign * bytes
            guard let owner else { return }
            var usage = owners[owner, default: Usage()]
            usage.count += sign
            usage.bytes += sign * bytes
            owners[owner] = usage.count > 0 ? usage : nil
        }
    }

    private let state = Mutex(State())
    private let maximumMessages: Int
    private let maximumBytes: Int
    private let maximumMessagesPerOwner: Int
    private let maximumBytesPerOwner: Int

    public init(maximumMessages: Int = .max, maximumBytes: Int = .max,
                maximumMessagesPerOwner: Int = .max, maximumBytesPerOwner: Int = .max) {
        self.maximumMessages = maximumMessages
        self.maximumBytes = maximumBytes
        self.maximumMessagesPerOwner = maximumMessagesPerOwner
        self.maximumBytesPerOwner = maximumBytesPerOwner
    }

    /// What a retained message costs against `maximumBytes`: its topic (up to 65,535 bytes, as
    /// costly to keep as a payload), properties and payload, plus the entry's own bookkeeping.
    public static func footprint(of message: Message) -> Int {
        message.topic.utf8.count + message.payload.readableBytes
            + (message.properties.isEmpty ? 0 : message.properties.encodedSize) + entryOverhead
    }

    /// Bytes of index and message object per retained entry, counted so that a flood of empty-ish
    /// messages on distinct topics is bounded by bytes too, not only by count.
    public static let entryOverhead = 128

    public var count: Int { state.withLock { $0.total.count } }
    public var bytes: Int { state.withLock { $0.total.bytes } }

    /// Stores `message` for its topic, or clears the topic when the payload is empty (spec 3.3.1.3).
    /// `owner` is the publishing identity, held to its own share of the budget (nil: the server's
    /// own messages and those restored at start, counted only in the totals).
    @discardableResult
    public func apply(_ message: Message, owner: String? = nil) -> StoreResult {
        let levels = message.topic.split(separator: "/", omittingEmptySubsequences: false)
        return state.withLock { s in
            if message.payload.readableBytes == 0 {
                if let old = s.root.remove(levels[...]) { s.add(old.message, owner: old.owner, sign: -1) }
                return .cleared
            }
            let old = s.root.get(levels[...])
            let oldSize = old.map { Self.footprint(of: $0.message) } ?? 0
            let size = Self.footprint(of: message)
            guard s.total.count + (old == nil ? 1 : 0) <= maximumMessages, s.total.bytes - oldSize + size <= maximumBytes else {
                return .refused
            }
            if let owner {
                let usage = s.owners[owner] ?? Usage()
                let sameOwner = old?.owner == owner
                guard usage.count + (sameOwner ? 0 : 1) <= maximumMessagesPerOwner,
                      usage.bytes - (sameOwner ? oldSize : 0) + size <= maximumBytesPerOwner else { return .refused }
            }
            if let old { s.add(old.message, owner: old.owner, sign: -1) }
            s.root.set(levels[...], RetainedEntry(message: message, owner: owner))
            s.add(message, owner: owner, sign: 1)
            return .stored
        }
    }

    /// Retained messages whose topic matches `filter` (wildcards at the first level skip `$` topics).
    public func matching(_ filter: String) -> [Message] {
        let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
        return state.withLock { s in
            var out: [Message] = []
            s.root.collect(levels[...], first: true, into: &out)
            return out
        }
    }

    /// Drops expired messages (5.0 message expiry applies to retained copies too).
    public func purgeExpired(now: NIODeadline) -> Int {
        state.withLock { s in
            var removed: [RetainedEntry] = []
            s.root.purge(now: now, removed: &removed)
            for entry in removed { s.add(entry.message, owner: entry.owner, sign: -1) }
            return removed.count
        }
    }
}


private struct RetainedEntry {
    var message: Message
    var owner: String?
}

private struct RetainedNode {
    var entry: RetainedEntry?
    var children: [Substring: RetainedNode] = [:]

    var isEmpty: Bool { entry == nil && children.isEmpty }

    func get(_ levels: ArraySlice<Substring>) -> RetainedEntry? {
        guard let first = levels.first else { return entry }
        return children[first]?.get(levels.dropFirst())
    }

    mutating func set(_ levels: ArraySlice<Substring>, _ entry: RetainedEntry) {
        guard let first = levels.first else {
            self.entry = entry
            return
        }
        children[first, default: RetainedNode()].set(levels.dropFirst(), entry)
    }

    mutating func remove(_ levels: ArraySlice<Substring>) -> RetainedEntry? {
        guard let first = levels.first else {
            defer { entry = nil }
            return entry
        }
        guard var child = children[first] else { return nil }
        let removed = child.remove(levels.dropFirst())
        children[first] = child.isEmpty ? nil : child
        return removed
    }

    func collect(_ levels: ArraySlice<Substring>, first: Bool, into out: inout [Message]) {
        guard let level = levels.first else {
            if let entry { out.append(entry.message) }
            return
        }
        switch level {
        case "#":
            // '#' matches this level (the parent: "a/#" matches "a") and everything below.
            if !first, let entry { out.append(entry.message) }
            for (key, child) in children where !(first && key.hasPrefix("$")) {
                child.collectAll(into: &out)
            }
        case "+":
            for (key, child) in children where !(first && key.hasPrefix("$")) {
                child.collect(levels.dropFirst(), first: false, into: &out)
            }
        default:
            children[level]?.collect(levels.dropFirst(), first: false, into: &out)
        }
    }

    func collectAll(into out: inout [Message]) {
        if let entry { out.append(entry.message) }
        for child in children.values { child.collectAll(into: &out) }
    }

    mutating func purge(now: NIODeadline, removed: inout [RetainedEntry]) {
        if let entry, entry.message.isExpired(at: now) {
            removed.append(entry)
            self.entry = nil
        }
        for key in Array(children.keys) {
            children[key]!.purge(now: now, removed: &removed)
            if children[key]!.isEmpty { children[key] = nil }
        }
    }
}
