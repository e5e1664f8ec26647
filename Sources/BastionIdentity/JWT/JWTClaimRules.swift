import BastionCore

/// What a verified token's claims say about a CONNECT (pure: the time is passed in). Checks
/// `exp` (required), `nbf`, `iss`, `aud`; reads the user name, the client-id binding and the
/// ACL claims.
struct JWTClaimRules: Sendable {
    /// Longest user name a token may carry, as for CONNECT.
    static let maximumUsernameLength = 256

    let settings: JWTSettings
    /// Names the rules this backend returns.
    let source: String

    func decide(_ claims: [String: JSONValue], request: AuthenticationRequest, now: Double) -> BackendDecision {
        guard let expiry = claims["exp"]?.number else {
            return .deny(BackendDenial(.badCredentials, "the token has no numeric exp claim"))
        }
        guard now < expiry + settings.leeway else { return .deny(BackendDenial(.tokenExpired, "the token has expired")) }
        if let notBefore = claims["nbf"] {
            guard let value = notBefore.number else { return .deny(BackendDenial(.badCredentials, "nbf is not a number")) }
            guard now + settings.leeway >= value else { return .deny(BackendDenial(.tokenExpired, "the token is not valid yet")) }
        }
        if let issuer = settings.issuer, claims["iss"]?.string != issuer {
            return .deny(BackendDenial(.badCredentials, "the token's issuer is not \(issuer)"))
        }
        if !settings.audiences.isEmpty {
            guard let audiences = claims["aud"]?.strings, audiences.contains(where: settings.audiences.contains) else {
                return .deny(BackendDenial(.badCredentials, "the token is not for this audience"))
            }
        }
        guard let username = claims[settings.usernameClaim]?.string, !username.isEmpty,
              username.utf8.count <= Self.maximumUsernameLength, !username.utf8.contains(0)
        else {
            return .deny(BackendDenial(.badCredentials, "the token's \(settings.usernameClaim) claim is not a usable user name"))
        }
        // A CONNECT that names a user must name the token's; 3.1.1 clients cannot omit it.
        if let claimed = request.username, claimed != username {
            return .deny(BackendDenial(.badCredentials, "the CONNECT user name differs from the token's"))
        }
        var bound = false
        if let claim = settings.clientIDClaim {
            guard let allowed = claims[claim]?.strings else {
                return .deny(BackendDenial(.clientIDRefused, "the token does not name the client ids it is for (\(claim))"))
            }
            guard allowed.contains(request.clientID) else {
                return .deny(BackendDenial(.clientIDRefused, "the token is not for client id \(request.clientID)"))
            }
            bound = true
        }
        var rules: [BackendACLRule]?
        if !settings.aclClaims.isEmpty {
            var collected: [BackendACLRule] = []
            let claimsByAccess: [(String?, BackendACLRule.Access)] = [
                (settings.aclClaims.publish, .write), (settings.aclClaims.subscribe, .subscribe),
                (settings.aclClaims.readwrite, .readwrite), (settings.aclClaims.deny, .deny),
            ]
            for case (let name?, let access) in claimsByAccess {
                guard let value = claims[name] else { continue }
                guard let filters = value.strings, value.array != nil else {
                    return .deny(BackendDenial(.badCredentials, "the token's \(name) claim is not an array of topic filters"))
                }
                collected += filters.map { BackendACLRule(access: access, filter: $0, source: "\(source) claim \(name)") }
            }
            rules = collected
        }
        return .allow(BackendGrant(
            username: username, rules: rules, clientIDBound: bound, expiresAt: expiry + settings.leeway,
            disconnectAtExpiry: settings.disconnectOnExpiry))
    }
}
