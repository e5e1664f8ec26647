#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A `postgres` backend's configuration (docs/auth-backends.md).
public struct PostgresSettings: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String
    public var database: String?
    /// Read from `password_file`, never from the URL.
    public var password: String?
    /// TLS to the server; required off loopback unless `tls: false` says otherwise.
    public var tls: Bool
    /// PEM CAs for the server's certificate; nil: the system's roots.
    public var caFile: String?
    /// `$1` = the user name (required), `$2` = the client id; first column: the password hash.
    public var passwordQuery: String
    /// `$1` = the user name, `$2` = the client id; columns: access, topic filter.
    public var aclQuery: String?
    public var maximumConnections: Int
    /// Per query (also sent to the server as `statement_timeout`).
    public var queryTimeout: Duration

    public init(host: String, port: Int = 5432, username: String, database: String?, password: String? = nil, tls: Bool,
                caFile: String? = nil, passwordQuery: String, aclQuery: String? = nil, maximumConnections: Int = 8,
                queryTimeout: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.username = username
        self.database = database
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.passwordQuery = passwordQuery
        self.aclQuery = aclQuery
        self.maximumConnections = maximumConnections
        self.queryTimeout = queryTimeout
    }

    /// Parses `postgres://USER@HOST[:PORT]/DATABASE` (`postgresql://` too). A password in the URL
    /// is refused: configuration files get copied and printed, so it goes in `password_file`.
    public static func parseURL(_ text: String) throws(PostgresSettingsError) -> (host: String, port: Int, username: String, database: String?) {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql"
        else { throw PostgresSettingsError(key: "url", "expected postgres://USER@HOST:PORT/DATABASE") }
        guard components.password == nil else {
            throw PostgresSettingsError(key: "url", "do not put the password in the URL; use password_file")
        }
        guard let username = components.user, !username.isEmpty else { throw PostgresSettingsError(key: "url", "the URL names no user (postgres://USER@HOST/DB)") }
        guard var host = components.host, !host.isEmpty else { throw PostgresSettingsError(key: "url", "the URL names no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard components.query == nil, components.fragment == nil else {
            throw PostgresSettingsError(key: "url", "URL parameters are not supported; use the backend's keys (tls, ca_file, ...)")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw PostgresSettingsError(key: "url", "port \(port) is out of range") }
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw PostgresSettingsError(key: "url", "the path must be just the database name") }
        return (host, port, username, path.isEmpty ? nil : path)
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The bind parameters a query uses (`$1`, `$2`); other numbers are refused, and
    /// `requireUsername` insists on `$1`. Parameters are always bound, never pasted into SQL.
    public static func placeholders(in query: String, key: String, requireUsername: Bool) throws(PostgresSettingsError) -> Int {
        var highest = 0
        var seen = Set<Int>()
        let bytes = Array(query.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "$"), i + 1 < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i + 1]) {
                var j = i + 1
                var number = 0
                while j < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[j]), number < 100 {
                    number = number * 10 + Int(bytes[j] - UInt8(ascii: "0"))
                    j += 1
                }
                guard number == 1 || number == 2 else {
                    throw PostgresSettingsError(key: key, "uses $\(number); only $1 (user name) and $2 (client id) are bound")
                }
                seen.insert(number)
                highest = max(highest, number)
                i = j
            } else {
                i += 1
            }
        }
        if requireUsername, !seen.contains(1) { throw PostgresSettingsError(key: key, "must select by the user name, $1") }
        return highest
    }
}

public struct PostgresSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
