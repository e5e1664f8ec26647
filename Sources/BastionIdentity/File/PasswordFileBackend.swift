import BastionSecurity

/// The password file (`auth.password_file`) as a member of the chain (`type: file`). Users it
/// lists are decided here — a wrong password is a deny, not a reason to ask the next backend —
/// and other users are left to the rest of the chain. The KDF runs on the blocking pool.
public struct PasswordFileBackend: IdentityBackend {
    public let name: String
    let file: PasswordFile
    let runner: BlockingRunner

    public init(name: String, file: PasswordFile, runner: BlockingRunner) {
        self.name = name
        self.file = file
        self.runner = runner
    }

    public func applies(to request: AuthenticationRequest) -> Bool {
        request.username != nil && request.password != nil
    }

    public func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        guard let username = request.username, let password = request.password, file.contains(username: username) else {
            return .noOpinion
        }
        let file = self.file
        guard let matched = await runner.run({ file.verify(username: username, password: password) }) else {
            return .unavailable("the hashing pool is not running")
        }
        return matched ? .allow(BackendGrant(username: username)) : .deny(BackendDenial(.badCredentials, "wrong password"))
    }

    /// What a wrong password costs: one check against the file's dummy hash.
    public func unknownUserCost(_ request: AuthenticationRequest) async {
        let file = self.file
        _ = await runner.run { file.verify(username: "", password: request.password) }
    }

    public var passwordFile: PasswordFile { file }
}
