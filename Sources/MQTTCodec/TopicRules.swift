/// Topic name and topic filter rules of spec 4.7, shared by the codec, the router and the ACL engine.
public enum TopicRules {
    /// A PUBLISH topic: non-empty, no wildcards (spec 4.7.1, 3.3.2.1). UTF-8 rules are checked
    /// when the string is decoded.
    public static func validateName(_ topic: String, limits: DecoderLimits?) throws(MQTTDecodeError) {
        var levels = 1
        var length = 0
        for byte in topic.utf8 {
            length += 1
            switch byte {
            case UInt8(ascii: "+"), UInt8(ascii: "#"): throw .topicNameInvalid("wildcard in topic name '\(topic)'")
            case UInt8(ascii: "/"): levels += 1
            default: break
            }
        }
        guard length > 0 else { throw .protocolError("empty topic name") }
        if let limits {
            guard length <= limits.maximumTopicLength else { throw .topicNameInvalid("topic longer than \(limits.maximumTopicLength) bytes") }
            guard levels <= limits.maximumTopicLevels else { throw .topicNameInvalid("topic deeper than \(limits.maximumTopicLevels) levels") }
        }
    }

    public enum FilterError: Error, Equatable, CustomStringConvertible {
        case empty
        case misplacedWildcard
        case invalidShareName
        case tooLong(Int)
        case tooDeep(Int)

        public var description: String {
            switch self {
            case .empty: "empty topic filter"
            case .misplacedWildcard: "'+' and '#' must occupy a whole level and '#' must be last"
            case .invalidShareName: "invalid $share/GROUP/FILTER"
            case .tooLong(let max): "topic filter longer than \(max) bytes"
            case .tooDeep(let max): "topic filter deeper than \(max) levels"
            }
        }
    }

    /// A SUBSCRIBE or UNSUBSCRIBE filter, including the `$share/GROUP/FILTER` form.
    public static func validateFilter(_ filter: String, limits: DecoderLimits?) throws(FilterError) {
        if let limits, filter.utf8.count > limits.maximumTopicLength { throw .tooLong(limits.maximumTopicLength) }
        let plain: Substring
        if let shared = SharedFilter(filter) {
            plain = shared.filter[...]
        } else if filter.utf8.starts(with: SharedFilter.prefix) {
            throw .invalidShareName
        } else {
            plain = filter[...]
        }
        guard !plain.isEmpty else { throw .empty }
        var levels = 1
        var levelLength = 0
        var levelHasWildcard = false
        var afterHash = false
        for byte in plain.utf8 {
            if afterHash { throw .misplacedWildcard }
            switch byte {
            case UInt8(ascii: "/"):
                levels += 1
                levelLength = 0
                levelHasWildcard = false
            case UInt8(ascii: "+"), UInt8(ascii: "#"):
                guard levelLength == 0 else { throw .misplacedWildcard }
                levelLength += 1
                levelHasWildcard = true
                if byte == UInt8(ascii: "#") { afterHash = true }
            default:
                if levelHasWildcard { throw .misplacedWildcard }
                levelLength += 1
            }
        }
        if let limits, levels > limits.maximumTopicLevels { throw .tooDeep(limits.maximumTopicLevels) }
    }

    @inlinable
    public static func hasWildcard(_ filter: String) -> Bool {
        filter.utf8.contains(UInt8(ascii: "+")) || filter.utf8.contains(UInt8(ascii: "#"))
    }

    /// Whether `filter` (not a shared form) matches `topic` (spec 4.7). Wildcards at the first level
    /// never match topics starting with `$` (spec 4.7.2).
    public static func matches(filter: String, topic: String) -> Bool {
        var f = filter.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).makeIterator()
        var t = topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).makeIterator()
        var first = true
        while true {
            let fl = f.next()
            let tl = t.next()
            switch (fl, tl) {
            case (nil, nil):
                return true
            case (let fl?, nil):
                // "a/#" matches "a": '#' also matches the parent level.
                return fl.elementsEqual("#".utf8) && f.next() == nil
            case (nil, _):
                return false
            case (let fl?, let tl?):
                if first, tl.first == UInt8(ascii: "$"), fl.elementsEqual("#".utf8) || fl.elementsEqual("+".utf8) {
                    return false
                }
                if fl.elementsEqual("#".utf8) { return true }
                if !fl.elementsEqual("+".utf8), !fl.elementsEqual(tl) { return false }
            }
            first = false
        }
    }
}

/// `$share/GROUP/FILTER` (spec 4.8.2).
public struct SharedFilter: Sendable, Hashable {
    public var group: String
    public var filter: String

    static let prefix = "$share/".utf8

    /// Parses the shared form; nil when `raw` is not a valid shared subscription. Works on UTF-8
    /// bytes: the spec's characters are code points, and a combining mark after '/' or '+' would
    /// hide it inside one Swift `Character`.
    public init?(_ raw: String) {
        let bytes = raw.utf8
        guard bytes.starts(with: Self.prefix) else { return nil }
        let rest = bytes.dropFirst(Self.prefix.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let group = rest[..<slash]
        let filter = rest[rest.index(after: slash)...]
        guard !group.isEmpty, !filter.isEmpty,
              !group.contains(UInt8(ascii: "+")), !group.contains(UInt8(ascii: "#")) else { return nil }
        // Both halves were split at an ASCII byte, so they are whole UTF-8 sequences.
        self.group = String(decoding: group, as: UTF8.self)
        self.filter = String(decoding: filter, as: UTF8.self)
    }
}
