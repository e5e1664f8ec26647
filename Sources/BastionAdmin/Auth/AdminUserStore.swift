import BastionSecurity
import Logging
import Synchronization

/// Console users in `admin-users`: one `name:role:hash:totp` line each. `hash` is a PBKDF2
/// `$7$` hash as in MQTT password files (`PasswordHash`); `totp` is the user's TOTP secret, empty
/// until enrolled. The file is private (0600) and rewritten atomically on every change.
public final class AdminUserStore: Sendable {
    public struct User: Sendable, Hashable {
        public var name: String
        public var role: AdminRole
        var hash: PasswordHash
        /// Nil until the user enrolled TOTP.
        var totpSecret: String?

        public var totpEnrolled: Bool { totpSecret != nil }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    let path: String
    private let users: Mutex<[String: User]>

    init(path: String, users: [User]) {
        self.path = path
        self.users = Mutex(Dictionary(users.map { ($0.name, $0) }, uniquingKeysWith: { $1 }))
    }

    /// Loads the file; nil when it does not exist yet (first start).
    static func load(path: String, logger: Logger) throws(Failure) -> AdminUserStore? {
        let text: String?
        do {
            text = try PrivateFiles.read(path, logger: logger)
        } catch {
            throw Failure(description: error.description)
        }
        guard let text else { return nil }
        var users: [User] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: [" ", "\t", "\r"])
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, isValidName(fields[0]), let role = AdminRole(rawValue: fields[1]),
                  let hash = PasswordHash.parse(fields[2]) else {
                throw Failure(description: "\(path):\(index + 1): expected NAME:ROLE:HASH:TOTP with ROLE viewer, operator or admin")
            }
            users.append(User(name: fields[0], role: role, hash: hash, totpSecret: fields[3].isEmpty ? nil : fields[3]))
        }
        return AdminUserStore(path: path, users: users)
    }

    /// Letters, digits and `._@-`, 1 to 64 characters.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { nameBytes.contains($0) }
    }

    private static let nameBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-".utf8)

    public func user(named name: String) -> User? { users.withLock { $0[name] } }

    public func list() -> [User] { users.withLock { $0.values.sorted { $0.name < $1.name } } }

    public var count: Int { users.withLock { $0.count } }

    /// Adds or replaces a user (the hash is computed by the caller, off the event loops).
    func put(_ user: User) throws(Failure) {
        try mutate { $0[user.name] = user }
    }

    func remove(_ name: String) throws(Failure) -> Bool {
        var removed = false
        try mutate { removed = $0.removeValue(forKey: name) != nil }
        return removed
    }

    func setTOTP(_ secret: String?, for name: String) throws(Failure) {
        try mutate { $0[name]?.totpSecret = secret }
    }

    func setRole(_ role: AdminRole, for name: String) throws(Failure) {
        try mutate { $0[name]?.role = role }
    }

    /// Applies `change` and writes the file; the change is undone when the write fails.
    private func mutate(_ change: (inout [String: User]) -> Void) throws(Failure) {
        let result: Result<Void, Failure> = users.withLock { table in
            let before = table
            change(&table)
            let text = table.values.sorted { $0.name < $1.name }
                .map { "\($0.name):\($0.role.rawValue):\($0.hash.encoded):\($0.totpSecret ?? "")" }
                .joined(separator: "\n") + "\n"
            do {
                try PrivateFiles.write(text, to: path)
                return .success(())
            } catch {
                table = before
                return .failure(Failure(description: "\(error)"))
            }
        }
        try result.get()
    }
}
