import BastionCore

/// Identities allowed to take over each other's sessions (`auth.shared_sessions`), e.g. the two
/// gateways of a fail-over pair that connect with one client id. Everyone else may use only the
/// sessions their own identity created.
public struct SessionSharing: Sendable, Equatable {
    private let groupOf: [String: Int]

    public static let none = SessionSharing(groupOf: [:])

    private init(groupOf: [String: Int]) { self.groupOf = groupOf }

    /// `groups`: lists of user names (or certificate identities used as user names).
    public init(groups: [[String]]) throws(ACLError) {
        var groupOf: [String: Int] = [:]
        for (index, group) in groups.enumerated() {
            let source = "config auth.shared_sessions[\(index)]"
            guard group.count >= 2 else { throw ACLError(source: source, message: "a sharing group needs at least two identities") }
            for name in group {
                guard !name.isEmpty else { throw ACLError(source: source, message: "empty identity name") }
                if let other = groupOf[name], other != index {
                    throw ACLError(source: source, message: "'\(name)' is already in shared_sessions[\(other)]; merge the groups")
                }
                groupOf[name] = index
            }
        }
        self.groupOf = groupOf
    }

    /// Whether the session of `owner` (a `SessionOwner` name) may be used by `identity`.
    public func mayShare(_ identity: String, _ owner: String) -> Bool {
        guard let a = SessionOwner.username(of: identity), let b = SessionOwner.username(of: owner),
              let group = groupOf[a] else { return false }
        return groupOf[b] == group
    }
}
