import BastionLDAP

/// `type: ldap`: binds as the client (its user name and password) through `BastionLDAP`, and
/// maps the user's directory groups to roles of `auth.roles` (`role_map`), so the native rules
/// for those roles apply.
///
/// A directory does not tell an unknown user from a wrong password, so every refusal is a
/// deny: put this backend after those that should see their own users first.
///
/// The identity's user name is the first RDN value of the entry as the directory reports it
/// (`uid=alice,ou=devices,…` → `alice`), not what the client typed: directories match names
/// without regard to case or surrounding spaces, and `ALICE` must not escape the rules and
/// the session of `alice`.
public struct LDAPBackend: IdentityBackend {
    public let name: String
    let directory: LDAPDirectoryAuthenticator
    /// Group name → roles.
    let roleMap: [String: [String]]

    public init(name: String, directory: LDAPDirectoryAuthenticator, roleMap: [String: [String]]) {
        self.name = name
        self.directory = directory
        self.roleMap = roleMap
    }

    public func applies(to request: AuthenticationRequest) -> Bool {
        request.username != nil && request.password != nil
    }

    public func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        guard let username = request.username else { return .noOpinion }
        guard let password = request.passwordText else {
            return .deny(BackendDenial(.badCredentials, "the password is not UTF-8 text a directory can check"))
        }
        switch await directory.authenticate(username: username, password: password) {
        case .authenticated(let dn, let groups):
            guard let canonical = LDAPDistinguishedName.firstRDN(of: dn)?.value, !canonical.isEmpty else {
                return .unavailable("the directory reported an entry DN without an RDN value")
            }
            return .allow(BackendGrant(username: canonical, roles: roles(for: groups)))
        case .invalidCredentials:
            return .deny(BackendDenial(.badCredentials, "the directory refused the bind"))
        case .unavailable(let reason):
            return .unavailable(reason)
        }
    }

    /// Roles of the groups that `role_map` names, in order, without repeats.
    func roles(for groups: [String]) -> [String] {
        var roles: [String] = []
        for group in groups {
            for role in roleMap[group] ?? [] where !roles.contains(role) { roles.append(role) }
        }
        return roles
    }
}
