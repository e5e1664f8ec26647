import MQTTCodec
import NIOCore
import Synchronization

/// Retained messages, one per topic (spec 3.3.1.3). One owner for the whole broker; writes are rare
/// next to deliveries, and reads happen at SUBSCRIBE time, so a mutex with short sections suffices.
public final class RetainedStore: Sendable {
    public enum StoreResult: Equatable, Sendable {
        case stored
        case cleared
        /// Over `maximumRetainedMessages` or `maximumRetainedBytes` (topic, properties and payload): not kept.
        case refused
    }

    private struct State {
        var root = RetainedNode()
        var count = 0
        var bytes = 0
    }

    private let state = Mutex(State())
    private let maximumMessages: Int
    private let maximumBytes: Int

    public init(maximumMessages: Int = .max, maximumBytes: Int = .max) {
        self.maximumMessages = maximumMessages
        self.maximumBytes = maximumBytes
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

    public var count: Int { state.withLock { $0.count } }
    public var bytes: Int { state.withLock { $0.bytes } }

    /// Stores `message` for its topic, or clears the topic when the payload is empty (spec 3.3.1.3).
    @discardableResult
    public func apply(_ message: Message) -> StoreResult {
        let levels = message.topic.split(separator: "/", omittingEmptySubsequences: false)
        return state.withLock { s in
            if message.payload.readableBytes == 0 {
                if let old = s.root.remove(levels[...]) {
                    s.count -= 1
                    s.bytes -= Self.footprint(of: old)
                }
                return .cleared
            }
            let oldSize = s.root.get(levels[...]).map(Self.footprint(of:))
            let newCount = s.count + (oldSize == nil ? 1 : 0)
            let newBytes = s.bytes - (oldSize ?? 0) + Self.footprint(of: message)
            guard newCount <= maximumMessages, newBytes <= maximumBytes else { return .refused }
            s.root.set(levels[...], message)
            s.count = newCount
            s.bytes = newBytes
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
            var removed: [Message] = []
            s.root.purge(now: now, removed: &removed)
            s.count -= removed.count
            s.bytes -= removed.reduce(0) { $0 + Self.footprint(of: $1) }
            return removed.count
        }
    }
}


private struct RetainedNode {
    var message: Message?
    var children: [Substring: RetainedNode] = [:]

    var isEmpty: Bool { message == nil && children.isEmpty }

    func get(_ levels: ArraySlice<Substring>) -> Message? {
        guard let first = levels.first else { return message }
        return children[first]?.get(levels.dropFirst())
    }

    mutating func set(_ levels: ArraySlice<Substring>, _ message: Message) {
        guard let first = levels.first else {
            self.message = message
            return
        }
        children[first, default: RetainedNode()].set(levels.dropFirst(), message)
    }

    mutating func remove(_ levels: ArraySlice<Substring>) -> Message? {
        guard let first = levels.first else {
            defer { message = nil }
            return message
        }
        guard var child = children[first] else { return nil }
        let removed = child.remove(levels.dropFirst())
        children[first] = child.isEmpty ? nil : child
        return removed
    }

    func collect(_ levels: ArraySlice<Substring>, first: Bool, into out: inout [Message]) {
        guard let level = levels.first else {
            if let message { out.append(message) }
            return
        }
        switch level {
        case "#":
            // '#' matches this level (the parent: "a/#" matches "a") and everything below.
            if !first, let message { out.append(message) }
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
        if let message { out.append(message) }
        for child in children.values { child.collectAll(into: &out) }
    }

    mutating func purge(now: NIODeadline, removed: inout [Message]) {
        if let message, message.isExpired(at: now) {
            removed.append(message)
            self.message = nil
        }
        for key in Array(children.keys) {
            children[key]!.purge(now: now, removed: &removed)
            if children[key]!.isEmpty { children[key] = nil }
        }
    }
}
