import MQTTCodec

/// The operations a rule grants.
struct AccessSet: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    static let publish = AccessSet(rawValue: 1)
    static let subscribe = AccessSet(rawValue: 2)
    static let read = AccessSet(rawValue: 4)
    static let all: AccessSet = [.publish, .subscribe, .read]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ operation: AccessOperation) {
        switch operation {
        case .publish: self = .publish
        case .subscribe: self = .subscribe
        case .read: self = .read
        }
    }
}

enum RuleEffect: Sendable, Hashable {
    case allow(AccessSet)
    /// Denies every operation on the topics it covers.
    case deny

    func applies(to operation: AccessOperation) -> Bool {
        switch self {
        case .allow(let set): set.contains(AccessSet(operation))
        case .deny: true
        }
    }

    var isDeny: Bool { self == .deny }
}

/// Who a rule is for, ordered by how specific the identity is (the second precedence key).
enum RuleSubject: Sendable, Hashable {
    case clientID(String)
    case user(String)
    case certificate(String)
    case role(String)
    /// Every client, anonymous included (native `all: true`, Mosquitto `pattern` lines).
    case all
    /// Clients with neither username nor certificate (Mosquitto `topic` lines before any `user`).
    case anonymous

    /// client id > user/certificate > role > pattern/all > anonymous.
    var rank: Int {
        switch self {
        case .clientID: 5
        case .user, .certificate: 4
        case .role: 3
        case .all: 2
        case .anonymous: 1
        }
    }
}

/// One piece of a level that contains `%u` or `%c`.
enum TemplatePart: Sendable, Hashable {
    case text(String)
    case username
    case clientID
}

/// One level of a rule's topic filter.
enum FilterLevel: Sendable, Hashable {
    case literal(String)
    case plus
    case hash
    /// A level containing `%u` / `%c`; after substitution it is a literal.
    case template([TemplatePart])

    /// literal > `+` > `#` (the first precedence key, compared level by level).
    var specificity: Int {
        switch self {
        case .literal, .template: 3
        case .plus: 2
        case .hash: 1
        }
    }
}

/// Where a rule came from; decides how `%u`/`%c` are read and which lint checks apply.
enum RuleOrigin: Sendable, Hashable {
    /// Mosquitto `topic` line: `%u` and `%c` are plain text there, as in Mosquitto.
    case mosquittoTopic
    /// Mosquitto `pattern` line.
    case mosquittoPattern
    /// Native rule from the configuration file.
    case native
}

/// A rule ready for matching.
struct ACLRule: Sendable {
    let subject: RuleSubject
    /// For a client-id rule: the user, role or certificate the client id is bound to by the rule
    /// itself (`{client_id: X, user: U}`). Without it, the rule applies only to identities whose
    /// client id is bound some other way (`Identity.clientIDBound`).
    let binding: RuleSubject?
    let effect: RuleEffect
    /// The topic filter as written.
    let filter: String
    let levels: [FilterLevel]
    let origin: RuleOrigin
    /// `FILE:LINE` or `config acl[3]`.
    let source: String
    /// Full text reported by decisions, e.g. `acl.conf:12 user bob: topic readwrite plant/#`.
    let description: String
    /// Position among all rules (file rules first, then native rules).
    let order: Int

    init(subject: RuleSubject, binding: RuleSubject? = nil, effect: RuleEffect, filter: String, levels: [FilterLevel],
         origin: RuleOrigin, source: String, description: String, order: Int) {
        self.subject = subject
        self.binding = binding
        self.effect = effect
        self.filter = filter
        self.levels = levels
        self.origin = origin
        self.source = source
        self.description = description
        self.order = order
    }

    var usesSubstitution: Bool {
        levels.contains { if case .template = $0 { true } else { false } }
    }

    /// `%c` appears in the filter: the rule grants by client id.
    var usesClientID: Bool {
        levels.contains { level in
            guard case .template(let parts) = level else { return false }
            return parts.contains(.clientID)
        }
    }
}

extension ACLRule {
    /// Validates `filter` as an MQTT topic filter and splits it into levels. With `substitutes`,
    /// `%u` and `%c` become template parts.
    static func parseLevels(_ filter: String, substitutes: Bool) throws(ACLError.Reason) -> [FilterLevel] {
        do {
            try TopicRules.validateFilter(filter, limits: nil)
        } catch {
            throw .invalidFilter(error.description)
        }
        return filter.split(separator: "/", omittingEmptySubsequences: false).map { level in
            switch level {
            case "+": return .plus
            case "#": return .hash
            default:
                if substitutes, level.contains("%u") || level.contains("%c") {
                    return .template(templateParts(level))
                }
                return .literal(String(level))
            }
        }
    }

    private static func templateParts(_ level: Substring) -> [TemplatePart] {
        var parts: [TemplatePart] = []
        var text = ""
        var index = level.startIndex
        while index < level.endIndex {
            let next = level.index(after: index)
            if level[index] == "%", next < level.endIndex, level[next] == "u" || level[next] == "c" {
                if !text.isEmpty { parts.append(.text(text)); text = "" }
                parts.append(level[next] == "u" ? .username : .clientID)
                index = level.index(after: next)
            } else {
                text.append(level[index])
                index = next
            }
        }
        if !text.isEmpty { parts.append(.text(text)) }
        return parts
    }
}

extension ACLError {
    enum Reason: Error {
        case invalidFilter(String)
    }
}
