/// What an admin console user may do. Each role includes the ones before it.
public enum AdminRole: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Read everything the console shows.
    case viewer
    /// Also kick clients, clear retained messages, add and lift bans.
    case `operator`
    /// Also manage users and tokens, reload the ACL and the configuration, see certificates.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: AdminRole, rhs: AdminRole) -> Bool { lhs.rank < rhs.rank }

    public func includes(_ other: AdminRole) -> Bool { self >= other }
}

/// Who is making a request, once authenticated.
public struct AdminPrincipal: Sendable, Hashable {
    public enum Method: String, Sendable, Hashable {
        /// A browser session (cookie).
        case session
        /// A bearer token.
        case token
    }

    /// The user name, or `token:NAME` for API tokens.
    public var name: String
    public var role: AdminRole
    public var method: Method

    public init(name: String, role: AdminRole, method: Method) {
        self.name = name
        self.role = role
        self.method = method
    }
}
