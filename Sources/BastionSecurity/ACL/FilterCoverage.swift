/// The two questions the ACL engine asks about topic filters: does a rule's filter cover a requested
/// topic or filter, and which of two rule filters is more specific.
enum FilterCoverage {
    /// Values substituted for `%u` / `%c`; nil when the identity has none or when the value could
    /// widen a pattern (see `Substitution.safe`).
    struct Substitution {
        var username: String?
        var clientID: String?

        init(_ identity: Identity) {
            username = identity.username.flatMap(Self.safe)
            clientID = Self.safe(identity.clientID)
        }

        /// A value containing `+`, `#`, `/` or U+0000 could turn `devices/%u` into `devices/#` or
        /// `devices/a/#`; an empty value would make `devices/%c` a level shared by every client
        /// without an id. Such values make pattern rules not apply (so default deny), never widen them.
        static func safe(_ value: String) -> String? {
            guard !value.isEmpty else { return nil }
            for byte in value.utf8 where byte == UInt8(ascii: "+") || byte == UInt8(ascii: "#")
                || byte == UInt8(ascii: "/") || byte == 0 {
                return nil
            }
            return value
        }
    }

    /// Whether every topic matched by `requested` is matched by the rule filter `rule` (for a topic
    /// name: whether `rule` matches it). Follows spec 4.7: `#` also matches the parent level, and
    /// a wildcard in the first level never matches a topic starting with `$`.
    /// Returns false when `rule` needs a substitution the identity cannot provide.
    static func covers(_ rule: [FilterLevel], _ requested: [Substring], _ substitution: Substitution) -> Bool {
        var index = 0
        while true {
            if index == rule.count { return index == requested.count }
            let level = rule[index]
            if case .hash = level {
                if index == 0, let first = requested.first, first.utf8.first == UInt8(ascii: "$") { return false }
                return true
            }
            if index == requested.count { return false }
            let wanted = requested[index]
            switch level {
            case .hash:
                return true // handled above
            case .plus:
                if wanted == "#" { return false }
                if index == 0, wanted.utf8.first == UInt8(ascii: "$") { return false }
            case .literal(let text):
                if wanted != text { return false }
            case .template(let parts):
                guard matchesTemplate(parts, wanted, substitution, firstLevel: index == 0) else { return false }
            }
            index += 1
        }
    }

    /// Whether the literal level `wanted` equals the template with values substituted, without
    /// building the substituted string.
    private static func matchesTemplate(_ parts: [TemplatePart], _ wanted: Substring, _ substitution: Substitution, firstLevel: Bool) -> Bool {
        var rest = wanted.utf8[...]
        for (position, part) in parts.enumerated() {
            let value: String
            var substituted = true
            switch part {
            case .text(let text):
                value = text
                substituted = false
            case .username:
                guard let username = substitution.username else { return false }
                value = username
            case .clientID:
                guard let clientID = substitution.clientID else { return false }
                value = clientID
            }
            // A name like "$SYS" substituted at the very start would reach the broker's own tree.
            if substituted, firstLevel, position == 0, value.utf8.first == UInt8(ascii: "$") { return false }
            guard rest.starts(with: value.utf8) else { return false }
            rest = rest.dropFirst(value.utf8.count)
        }
        return rest.isEmpty
    }

    /// Orders two rule filters by specificity: level by level, literal > `+` > `#`; when one
    /// filter is a prefix of the other, the longer one is more specific, except that `x` is more
    /// specific than `x/#` (which also matches everything below `x`).
    /// Returns > 0 when `a` is more specific, < 0 when `b` is, 0 when equal.
    static func compareSpecificity(_ a: [FilterLevel], _ b: [FilterLevel]) -> Int {
        var index = 0
        while true {
            let aEnded = index == a.count
            let bEnded = index == b.count
            if aEnded && bEnded { return 0 }
            if aEnded { return b[index] == .hash ? 1 : -1 }
            if bEnded { return a[index] == .hash ? -1 : 1 }
            let difference = a[index].specificity - b[index].specificity
            if difference != 0 { return difference }
            index += 1
        }
    }

    /// Whether rule filter `outer` covers rule filter `inner` (used by lint, templates compared as
    /// written).
    static func ruleCovers(_ outer: [FilterLevel], _ inner: [FilterLevel]) -> Bool {
        var index = 0
        while true {
            if index == outer.count { return index == inner.count }
            let level = outer[index]
            if case .hash = level {
                if index == 0, case .literal(let first)? = inner.first, first.hasPrefix("$") { return false }
                return true
            }
            if index == inner.count { return false }
            let wanted = inner[index]
            switch level {
            case .hash: return true
            case .plus:
                if wanted == .hash { return false }
                if index == 0, case .literal(let first) = wanted, first.hasPrefix("$") { return false }
            case .literal, .template:
                if wanted != level { return false }
            }
            index += 1
        }
    }
}
