import Crypto
import Logging
import Synchronization

/// Bearer tokens for scripts. A token is `bst_ID_SECRET`; only SHA-256 of SECRET is kept
/// (`admin-tokens`, one `id:name:role:sha256:expires:created_by` line each), so the file does not
/// hand out access. Tokens are random 256-bit values, so a fast hash is enough (no password to
/// guess). Each has a role and an expiry.
///
/// The bootstrap token (`admin-token`, or `admin.token_file`) is held the same way, as a digest:
/// role admin, no expiry — it is what `bastion ban` and other scripts on the broker host use.
public final class APITokenStore: Sendable {
    public struct Token: Sendable, Hashable {
        public var id: String
        public var name: String
        public var role: AdminRole
        var digest: [UInt8]
        /// Unix seconds.
        public var expires: Double
        public var createdBy: String
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    let path: String
    private let tokens: Mutex<[String: Token]>
    private let bootstrapDigest: [UInt8]?

    init(path: String, tokens: [Token], bootstrapToken: String?) {
        self.path = path
        self.tokens = Mutex(Dictionary(tokens.map { ($0.id, $0) }, uniquingKeysWith: { $1 }))
        self.bootstrapDigest = bootstrapToken.map { Self.digest($0) }
    }

    static func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    static func load(path: String, bootstrapToken: String?, logger: Logger) throws(Failure) -> APITokenStore {
        let text: String?
        do {
            text = try PrivateFiles.read(path, logger: logger)
        } catch {
            throw Failure(description: error.description)
        }
        var tokens: [Token] = []
        for (index, line) in (text ?? "").split(separator: "\n").enumerated() {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6, let role = AdminRole(rawValue: fields[2]), let expires = Double(fields[4]),
                  let digest = hexBytes(fields[3]), digest.count == 32 else {
                throw Failure(description: "\(path):\(index + 1): malformed token line; remove it (the token stops working)")
            }
            tokens.append(Token(id: fields[0], name: fields[1], role: role, digest: digest, expires: expires, createdBy: fields[5]))
        }
        return APITokenStore(path: path, tokens: tokens, bootstrapToken: bootstrapToken)
    }

    /// The principal a presented bearer token stands for; nil when it is unknown or expired.
    func authenticate(_ presented: String, now: Double) -> AdminPrincipal? {
        let presentedDigest = Self.digest(presented)
        if let bootstrapDigest, constantTimeEqual(presentedDigest, bootstrapDigest) {
            return AdminPrincipal(name: "token:bootstrap", role: .admin, method: .token)
        }
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "bst", let token = tokens.withLock({ $0[String(parts[1])] }) else { return nil }
        guard constantTimeEqual(Self.digest(String(parts[2])), token.digest), token.expires > now else { return nil }
        return AdminPrincipal(name: "token:\(token.name)", role: token.role, method: .token)
    }

    public func list() -> [Token] { tokens.withLock { $0.values.sorted { $0.name < $1.name } } }

    /// Creates a token; the returned text is shown once and never stored.
    func create(name: String, role: AdminRole, lifetime: Double, createdBy: String, now: Double) throws(Failure) -> (Token, String) {
        let id = PrivateFiles.randomToken(bytes: 6).replacingOccurrences(of: "_", with: "x").replacingOccurrences(of: "-", with: "y")
        let secret = PrivateFiles.randomToken(bytes: 32)
        // The file separates fields with ':' ("token:NAME" creators included).
        let creator = createdBy.replacingOccurrences(of: ":", with: "/").filter { $0 != "\n" }
        let token = Token(id: id, name: name, role: role, digest: Self.digest(secret), expires: now + lifetime, createdBy: creator)
        try mutate { $0[id] = token }
        return (token, "bst_\(id)_\(secret)")
    }

    func remove(id: String) throws(Failure) -> Bool {
        var removed = false
        try mutate { removed = $0.removeValue(forKey: id) != nil }
        return removed
    }

    private func mutate(_ change: (inout [String: Token]) -> Void) throws(Failure) {
        let result: Result<Void, Failure> = tokens.withLock { table in
            let before = table
            change(&table)
            let text = table.values.sorted { $0.id < $1.id }
                .map { "\($0.id):\($0.name):\($0.role.rawValue):\(hex($0.digest)):\(Int64($0.expires)):\($0.createdBy)" }
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

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] })
}

func hexBytes(_ text: String) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(chars.count / 2)
    func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
    var i = 0
    while i < chars.count {
        guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
