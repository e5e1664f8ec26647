/// What a client asks to do with a topic.
public enum AccessOperation: String, Sendable, Hashable, CaseIterable {
    /// Send a PUBLISH to a topic name (also used for wills and retained messages, as the publisher).
    case publish
    /// SUBSCRIBE with a topic filter (for `$share/GROUP/F`, F is checked).
    case subscribe
    /// Receive a message on a topic name (checked per receiver at delivery).
    case read
}

/// The answer to an access question, with the rule that gave it (`"acl.conf:12 user bob: topic
/// readwrite plant/#"`) or `"default deny"`. Safe to log: it never contains a password.
public struct AccessDecision: Sendable, Hashable, CustomStringConvertible {
    public var allowed: Bool
    public var rule: String

    public init(allowed: Bool, rule: String) {
        self.allowed = allowed
        self.rule = rule
    }

    public static let defaultDeny = AccessDecision(allowed: false, rule: "default deny")

    public var description: String { "\(allowed ? "allow" : "deny") (\(rule))" }
}

/// An ACL or access-configuration problem. `source` is `FILE:LINE` or `config acl[3]`.
public struct ACLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}
