import BastionLDAP

/// The admin console's resolved settings (from `admin:` in the configuration file and
/// `--admin-listen`). Checked before anything binds; see docs/admin.md.
public struct AdminConfiguration: Sendable {
    public enum Scheme: String, Sendable, Hashable {
        case http, https
    }

    public var scheme: Scheme
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    /// PEM certificate chain and key for https; nil: the development CA's server certificate
    /// (loopback only).
    public var certificateFile: String?
    public var keyFile: String?
    /// Where the generated files live (admin-users, admin-tokens, admin-token, admin-password).
    public var dataDirectory: String
    /// `admin.users_file`, default DATA/admin-users.
    public var usersFile: String
    /// API tokens created in the console (hashed), DATA/admin-tokens.
    public var tokensFile: String
    /// The bootstrap bearer token (role admin): `admin.token_file`, or DATA/admin-token generated
    /// on first start.
    public var bootstrapTokenFile: String
    /// True when `bootstrapTokenFile` is the operator's own file (it must exist and be private);
    /// false when the console generates it.
    public var bootstrapTokenConfigured: Bool
    /// The first admin's generated password, DATA/admin-password.
    public var initialPasswordFile: String
    /// Host names accepted in the Host header besides the listener's address (and localhost on
    /// loopback).
    public var hostnames: [String]
    public var sessionLifetime: Duration
    public var sessionIdleTimeout: Duration
    public var lockout: LoginLockoutPolicy
    public var ldap: LDAPLoginConfiguration?

    public init(scheme: Scheme, host: String, port: Int, dataDirectory: String, certificateFile: String? = nil, keyFile: String? = nil,
                usersFile: String? = nil, tokenFile: String? = nil, hostnames: [String] = [],
                sessionLifetime: Duration = .seconds(8 * 3600), sessionIdleTimeout: Duration = .seconds(30 * 60),
                lockout: LoginLockoutPolicy = LoginLockoutPolicy(), ldap: LDAPLoginConfiguration? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        let dir = dataDirectory.hasSuffix("/") ? String(dataDirectory.dropLast()) : dataDirectory
        self.dataDirectory = dir
        self.usersFile = usersFile ?? "\(dir)/admin-users"
        self.tokensFile = "\(dir)/admin-tokens"
        self.bootstrapTokenFile = tokenFile ?? "\(dir)/admin-token"
        self.bootstrapTokenConfigured = tokenFile != nil
        self.initialPasswordFile = "\(dir)/admin-password"
        self.hostnames = hostnames
        self.sessionLifetime = sessionLifetime
        self.sessionIdleTimeout = sessionIdleTimeout
        self.lockout = lockout
        self.ldap = ldap
    }

    /// True for 127.0.0.0/8, ::1 and "localhost".
    public var isLoopback: Bool { AdminConfiguration.isLoopback(host: host) }

    /// /metrics answers without a token only on loopback.
    public var metricsNeedToken: Bool { !isLoopback }

    public static func isLoopback(host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { return false }
        return parts[0] == "127"
    }

    /// "https://127.0.0.1:9443" (with the bound port once known).
    public func url(port: Int? = nil) -> String {
        "\(scheme.rawValue)://\(host.contains(":") ? "[\(host)]" : host):\(port ?? self.port)"
    }
}

/// Admin logins against a directory: `admin.ldap`.
public struct LDAPLoginConfiguration: Sendable {
    public var directory: LDAPDirectoryConfiguration
    /// Directory group name → console role. A user in several mapped groups gets the highest
    /// role; a user in none is refused.
    public var roleMap: [String: AdminRole]

    public init(directory: LDAPDirectoryConfiguration, roleMap: [String: AdminRole]) {
        self.directory = directory
        self.roleMap = roleMap
    }

    /// The highest role any of `groups` maps to (group names compare case-insensitively, as
    /// directories do).
    public func role(for groups: [String]) -> AdminRole? {
        var best: AdminRole?
        let lowered = Dictionary(roleMap.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: max)
        for group in groups {
            if let role = lowered[group.lowercased()], best.map({ role > $0 }) ?? true { best = role }
        }
        return best
    }
}
