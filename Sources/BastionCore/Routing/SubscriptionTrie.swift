import MQTTCodec

/// The subscription index: a trie over topic levels, so matching a topic costs in proportion to
/// its depth (and the matches found), not to the number of subscriptions.
///
/// Not thread-safe by design: each event loop owns a replica fed with the same `SubscriptionChange`
/// events, so lookups on the publish path take no lock (see docs/ARCHITECTURE.md).
public final class SubscriptionTrie<Subscriber: AnyObject> {
    public struct Entry {
        public let subscriber: Subscriber
        public var subscription: Subscription
    }

    /// Members of one `$share/GROUP/` group on one filter, served round-robin.
    final class SharedGroup {
        var members: [Entry] = []
        var next = 0
    }

    enum Step {
        case literal(String), plus, hash
    }

    final class Node {
        var literal: [String: Node] = [:]
        var plus: Node?
        var hash: Node?
        var entries: [Entry] = []
        var groups: [String: SharedGroup] = [:]

        var isEmpty: Bool {
            literal.isEmpty && plus == nil && hash == nil && entries.isEmpty && groups.isEmpty
        }
    }

    private let root = Node()
    public private(set) var count = 0

    public init() {}

    /// Adds or replaces `subscriber`'s subscription on `subscription.filter`.
    public func insert(_ subscriber: Subscriber, _ subscription: Subscription) {
        let shared = SharedFilter(subscription.filter)
        let node = self.node(for: shared?.filter ?? subscription.filter, create: true)!
        let entry = Entry(subscriber: subscriber, subscription: subscription)
        if let group = shared?.group {
            let g = node.groups[group] ?? SharedGroup()
            if let i = g.members.firstIndex(where: { $0.subscriber === subscriber }) {
                g.members[i] = entry
            } else {
                g.members.append(entry)
                count += 1
            }
            node.groups[group] = g
        } else if let i = node.entries.firstIndex(where: { $0.subscriber === subscriber }) {
            node.entries[i] = entry
        } else {
            node.entries.append(entry)
            count += 1
        }
    }

    /// Removes `subscriber`'s subscription on `filter` (as sent, `$share` form included).
    @discardableResult
    public func remove(_ subscriber: Subscriber, filter: String) -> Bool {
        let shared = SharedFilter(filter)
        var path: [(Node, Step)] = []
        guard let node = self.node(for: shared?.filter ?? filter, create: false, path: &path) else { return false }
        var removed = false
        if let group = shared?.group, let g = node.groups[group] {
            if let i = g.members.firstIndex(where: { $0.subscriber === subscriber }) {
                g.members.remove(at: i)
                if g.next > i { g.next -= 1 }
                removed = true
            }
            if g.members.isEmpty { node.groups[group] = nil }
        } else if shared == nil, let i = node.entries.firstIndex(where: { $0.subscriber === subscriber }) {
            node.entries.remove(at: i)
            removed = true
        }
        if removed {
            count -= 1
            prune(path)
        }
        return removed
    }

    /// Calls `body` for every subscription matching `topic`: each matching non-shared entry, and
    /// for each matching shared group the member `pickShared` chooses (round-robin order offered).
    public func forEachMatch(
        _ topic: String,
        pickShared: (_ members: [Entry], _ start: Int) -> Int?,
        _ body: (Entry) -> Void
    ) {
        let utf8 = topic.utf8
        let dollar = utf8.first == UInt8(ascii: "$")
        match(node: root, topic: topic, from: utf8.startIndex, firstLevel: true, dollar: dollar, pickShared: pickShared, body)
    }

    private func match(
        node: Node, topic: String, from start: String.Index, firstLevel: Bool, dollar: Bool,
        pickShared: (_ members: [Entry], _ start: Int) -> Int?, _ body: (Entry) -> Void
    ) {
        // Wildcards at the first level never match topics beginning with '$' (spec 4.7.2).
        let wildcardsAllowed = !(firstLevel && dollar)
        if wildcardsAllowed, let hash = node.hash { emit(hash, pickShared, body) }
        let utf8 = topic.utf8
        let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
        let atLastLevel = end == utf8.endIndex
        let next = atLastLevel ? end : utf8.index(after: end)
        if wildcardsAllowed, let plus = node.plus {
            if atLastLevel { finish(plus, pickShared, body) } else {
                match(node: plus, topic: topic, from: next, firstLevel: false, dollar: dollar, pickShared: pickShared, body)
            }
        }
        if let child = node.literal[String(topic[start..<end])] {
            if atLastLevel { finish(child, pickShared, body) } else {
                match(node: child, topic: topic, from: next, firstLevel: false, dollar: dollar, pickShared: pickShared, body)
            }
        }
    }

    /// The topic ends at `node`: its own entries match, and so does a '#' child ("a/#" matches "a").
    private func finish(_ node: Node, _ pickShared: (_ members: [Entry], _ start: Int) -> Int?, _ body: (Entry) -> Void) {
        emit(node, pickShared, body)
        if let hash = node.hash { emit(hash, pickShared, body) }
    }

    private func emit(_ node: Node, _ pickShared: (_ members: [Entry], _ start: Int) -> Int?, _ body: (Entry) -> Void) {
        for entry in node.entries { body(entry) }
        if node.groups.isEmpty { return }
        for group in node.groups.values {
            let start = group.next % group.members.count
            guard let chosen = pickShared(group.members, start) else { continue }
            group.next = chosen + 1
            body(group.members[chosen])
        }
    }

    /// Members of `$share/group/filter`, for handing a departed member's messages to another.
    public func sharedMembers(group: String, filter: String) -> [Entry] {
        var path: [(Node, Step)] = []
        return node(for: filter, create: false, path: &path)?.groups[group]?.members ?? []
    }

    private func node(for filter: String, create: Bool) -> Node? {
        var path: [(Node, Step)] = []
        return node(for: filter, create: create, path: &path)
    }

    /// Walks to the node of `filter`, recording each parent and the step taken for pruning.
    private func node(for filter: String, create: Bool, path: inout [(Node, Step)]) -> Node? {
        var node = root
        for level in filter.split(separator: "/", omittingEmptySubsequences: false) {
            let next: Node?
            let step: Step
            switch level {
            case "+":
                if node.plus == nil && create { node.plus = Node() }
                next = node.plus
                step = .plus
            case "#":
                if node.hash == nil && create { node.hash = Node() }
                next = node.hash
                step = .hash
            default:
                let key = String(level)
                if node.literal[key] == nil && create { node.literal[key] = Node() }
                next = node.literal[key]
                step = .literal(key)
            }
            guard let next else { return nil }
            path.append((node, step))
            node = next
        }
        return node
    }

    /// Drops nodes left empty by a removal, deepest first.
    private func prune(_ path: [(Node, Step)]) {
        for (parent, step) in path.reversed() {
            switch step {
            case .plus:
                guard parent.plus?.isEmpty == true else { return }
                parent.plus = nil
            case .hash:
                guard parent.hash?.isEmpty == true else { return }
                parent.hash = nil
            case .literal(let key):
                guard parent.literal[key]?.isEmpty == true else { return }
                parent.literal[key] = nil
            }
        }
    }
}
