import MQTTCodec

/// One `topics` entry of a bridge: a local filter, the remote filter it maps to, the QoS it is
/// forwarded at and the direction traffic may take. Wildcards map level by level: the two
/// filters carry the same wildcards in the same order, and the levels a `+` or `#` matched on
/// one side fill the same wildcard on the other (`plant/+/temp` ↔ `site1/temps/+`).
public struct BridgeTopic: Sendable, Equatable {
    public enum Direction: String, Sendable, CaseIterable {
        /// Local traffic is published on the remote broker.
        case out
        /// Remote traffic is published locally (never with `upward_only`).
        case `in`
        case both

        public var sendsOut: Bool { self != .in }
        public var bringsIn: Bool { self != .out }
    }

    public let local: String
    public let remote: String
    /// 0 or 1: what the local subscription is granted and the remote publish carries at most.
    public let qos: QoS
    public let direction: Direction
    /// Set when the remote filter is the local one behind a prefix: mapping is a concatenation.
    private let prefix: String?
    private let localLevels: [Substring]
    private let remoteLevels: [Substring]

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case filter(String, String)
        case wildcardsDiffer(local: String, remote: String)
        case prefixWithWildcard(String)
        case sharedSubscription(String)

        public var description: String {
            switch self {
            case .filter(let filter, let why): "'\(filter)' is not a valid topic filter: \(why)"
            case .wildcardsDiffer(let local, let remote):
                "'\(local)' and '\(remote)' must have the same wildcards in the same order to map one onto the other"
            case .prefixWithWildcard(let prefix): "remote_prefix '\(prefix)' must not contain + or #"
            case .sharedSubscription(let filter): "'\(filter)' is a shared subscription; bridge a plain filter"
            }
        }
    }

    /// `remote` names the remote filter; nil means the local filter behind `remotePrefix` (or the
    /// same filter on both sides).
    public init(local: String, remote: String?, remotePrefix: String?, qos: QoS, direction: Direction) throws(Invalid) {
        try Self.validate(local)
        if let remotePrefix, remotePrefix.contains(where: { $0 == "+" || $0 == "#" }) {
            throw .prefixWithWildcard(remotePrefix)
        }
        let remoteFilter = remote ?? ((remotePrefix ?? "") + local)
        try Self.validate(remoteFilter)
        let localLevels = local.split(separator: "/", omittingEmptySubsequences: false)
        let remoteLevels = remoteFilter.split(separator: "/", omittingEmptySubsequences: false)
        guard localLevels.filter(Self.isWildcard) == remoteLevels.filter(Self.isWildcard) else {
            throw .wildcardsDiffer(local: local, remote: remoteFilter)
        }
        self.local = local
        self.remote = remoteFilter
        self.qos = qos
        self.direction = direction
        self.prefix = remote == nil ? (remotePrefix ?? "") : nil
        self.localLevels = localLevels
        self.remoteLevels = remoteLevels
    }

    public static func == (lhs: BridgeTopic, rhs: BridgeTopic) -> Bool {
        lhs.local == rhs.local && lhs.remote == rhs.remote && lhs.qos == rhs.qos && lhs.direction == rhs.direction
    }

    /// The remote topic for a local topic this entry's filter matches; nil when it does not match.
    public func remoteTopic(forLocal topic: String) -> String? {
        if let prefix {
            guard TopicRules.matches(filter: local, topic: topic) else { return nil }
            return prefix.isEmpty ? topic : prefix + topic
        }
        return Self.map(topic, from: localLevels, to: remoteLevels)
    }

    /// The local topic for a remote topic this entry's remote filter matches.
    public func localTopic(forRemote topic: String) -> String? {
        if let prefix {
            guard topic.hasPrefix(prefix) else { return nil }
            let local = String(topic.dropFirst(prefix.utf8.count))
            return TopicRules.matches(filter: self.local, topic: local) ? local : nil
        }
        return Self.map(topic, from: remoteLevels, to: localLevels)
    }

    // MARK: Level mapping

    private static func isWildcard(_ level: Substring) -> Bool { level == "+" || level == "#" }

    private static func validate(_ filter: String) throws(Invalid) {
        if filter.hasPrefix("$share/") { throw .sharedSubscription(filter) }
        do {
            try TopicRules.validateFilter(filter, limits: nil)
        } catch {
            throw .filter(filter, "\(error)")
        }
    }

    /// Matches `topic` against `source` and writes the captured levels into `target`'s wildcards.
    private static func map(_ topic: String, from source: [Substring], to target: [Substring]) -> String? {
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        var captures: [[Substring]] = []
        var index = 0
        for level in source {
            if level == "#" {
                captures.append(Array(levels[min(index, levels.count)...]))
                index = levels.count
                break
            }
            guard index < levels.count else { return nil }
            if level == "+" {
                captures.append([levels[index]])
            } else if level != levels[index] {
                return nil
            }
            index += 1
        }
        guard index == levels.count else { return nil }
        // `#` also matches its parent level (spec 4.7.1.2): it then captures no level, and the
        // other side's `#` adds none (`a/#` matches `a`, which maps to `x` for `x/#`).
        var out: [Substring] = []
        var next = captures.makeIterator()
        for level in target {
            if level == "+" || level == "#" {
                out.append(contentsOf: next.next() ?? [])
            } else {
                out.append(level)
            }
        }
        let mapped = out.joined(separator: "/")
        return mapped.isEmpty ? nil : mapped
    }
}
