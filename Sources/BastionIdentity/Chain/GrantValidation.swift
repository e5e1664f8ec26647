import BastionCore
import MQTTCodec

/// What an `allow` may carry. A backend answering outside these bounds is treated as one that
/// cannot answer (fail closed): silently dropping an invalid deny rule would widen access.
enum GrantValidation {
    static let maximumRules = 1000
    static let maximumRoles = 256
    static let maximumFilterLength = 65535
    static let maximumNameLength = 65535

    /// Why `grant` is unusable, or nil.
    static func problem(_ grant: BackendGrant) -> String? {
        if let username = grant.username, !isUsableName(username) { return "the user name it returned is empty, too long or contains control characters" }
        if let rules = grant.rules {
            guard rules.count <= maximumRules else { return "more than \(maximumRules) ACL rules" }
            for rule in rules {
                guard rule.filter.utf8.count <= maximumFilterLength else { return "an ACL filter longer than \(maximumFilterLength) bytes" }
                do {
                    try TopicRules.validateFilter(rule.filter, limits: nil)
                } catch {
                    return "an invalid ACL filter (\(error))"
                }
            }
        }
        guard grant.roles.count <= maximumRoles else { return "more than \(maximumRoles) roles" }
        if let expiresAt = grant.expiresAt, !expiresAt.isFinite { return "an expiry that is not a number" }
        return nil
    }

    static func isUsableName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maximumNameLength
            && !name.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
