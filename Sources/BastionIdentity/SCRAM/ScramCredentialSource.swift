import BastionSecurity

/// What a credential store knows about a user, for a SCRAM exchange.
public enum ScramLookup: Sendable, Equatable {
    case found(ScramStoredKeys)
    /// The store does not know the user: ask the next store.
    case unknown
    /// The store knows the user but holds no SCRAM keys of this algorithm for them (a `$7$`
    /// hash, say): the exchange runs on and fails like a wrong password.
    case unusable
    case unavailable(String)
}

/// A store of SCRAM stored keys: the password file, a `postgres` backend.
public protocol ScramCredentialSource: Sendable {
    var name: String { get }
    func scramLookup(username: String, algorithm: ScramAlgorithm) async -> ScramLookup
    /// What the store adds once the proof checked out (ACL rows); `.allow` without rules when
    /// it has nothing to add.
    func scramGrant(username: String, clientID: String) async -> BackendDecision
}

extension PasswordFileBackend: ScramCredentialSource {
    public func scramLookup(username: String, algorithm: ScramAlgorithm) async -> ScramLookup {
        guard passwordFile.contains(username: username) else { return .unknown }
        return passwordFile.scramKeys(for: username, algorithm: algorithm).map(ScramLookup.found) ?? .unusable
    }

    public func scramGrant(username: String, clientID: String) async -> BackendDecision {
        .allow(BackendGrant(username: username))
    }
}
