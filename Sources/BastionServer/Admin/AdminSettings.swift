import BastionAdmin
import BastionLDAP
import BastionSecurity
import Foundation

/// The admin console's listener and login settings, resolved from `admin:` and `--admin-listen`
/// and checked before anything binds (exit 2 with the key and a fix).
public struct AdminSettings: Sendable {
    public var scheme: AdminConfiguration.Scheme
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    public var certificateFile: String?
    public var keyFile: String?
    public var tokenFile: String?
    public var usersFile: String?
    public var hostnames: [String]
    public var sessionLifetime: Duration
    public var sessionIdleTimeout: Duration
    public var ldap: LDAPLoginConfiguration?

    public static let defaultListen = "https://127.0.0.1:9443"

    public init(scheme: AdminConfiguration.Scheme = .https, host: String, port: Int, certificateFile: String? = nil, keyFile: String? = nil,
                tokenFile: String? = nil, usersFile: String? = nil, hostnames: [String] = [],
                sessionLifetime: Duration = .seconds(8 * 3600), sessionIdleTimeout: Duration = .seconds(30 * 60),
                ldap: LDAPLoginConfiguration? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.tokenFile = tokenFile
        self.usersFile = usersFile
        self.hostnames = hostnames
        self.sessionLifetime = sessionLifetime
        self.sessionIdleTimeout = sessionIdleTimeout
        self.ldap = ldap
    }

    public var url: String { "\(scheme.rawValue)://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// The console's settings with the broker's data directory.
    public func configuration(dataDirectory: String) -> AdminConfiguration {
        AdminConfiguration(scheme: scheme, host: host, port: port, dataDirectory: dataDirectory, certificateFile: certificateFile,
                           keyFile: keyFile, usersFile: usersFile, tokenFile: tokenFile, hostnames: hostnames,
                           sessionLifetime: sessionLifetime, sessionIdleTimeout: sessionIdleTimeout, ldap: ldap)
    }

    /// True for 127.0.0.0/8, ::1 and "localhost".
    public static func isLoopback(host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        return IPAddress(host)?.isLoopback ?? false
    }

    /// Parses "https://HOST:PORT" or "http://HOST:PORT" (HOST may be a bracketed IPv6 address).
    public static func parseListen(_ text: String) -> (scheme: AdminConfiguration.Scheme, host: String, port: Int)? {
        let lower = text.lowercased()
        let scheme: AdminConfiguration.Scheme
        var rest: Substring
        if lower.hasPrefix("https://") {
            scheme = .https
            rest = text.dropFirst("https://".count)
        } else if lower.hasPrefix("http://") {
            scheme = .http
            rest = text.dropFirst("http://".count)
        } else {
            return nil
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon else { return nil }
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains("/"), let port = Int(portText), (0...65535).contains(port),
              portText.allSatisfy(\.isASCII) else { return nil }
        return (scheme, String(host), port)
    }

    /// nil when no admin listener is configured. `flag` is `--admin-listen`.
    public static func resolve(config: AdminConfig?, flag: String?, file: String?) throws(ConfigError) -> AdminSettings? {
        guard config != nil || flag != nil else { return nil }
        let text = flag ?? config?.listen ?? defaultListen
        let key = flag != nil ? "--admin-listen" : "admin.listen"
        let keyFile = flag != nil ? nil : file
        guard let (scheme, host, port) = parseListen(text) else {
            throw ConfigError(file: keyFile, key: key, "'\(text)' is not an admin listener URL",
                              fix: "use https://HOST:PORT, e.g. \(defaultListen) (http:// only on loopback)")
        }
        let loopback = isLoopback(host: host)
        if scheme == .http, !loopback {
            throw ConfigError(file: keyFile, key: key, "plain http is accepted only on loopback, and \(host) is not a loopback address",
                              fix: "use https://\(host):\(port) with admin.tls.cert and admin.tls.key, or bind http:// to 127.0.0.1")
        }
        let cert = config?.tls?.cert
        let tlsKey = config?.tls?.key
        if (cert == nil) != (tlsKey == nil) {
            throw ConfigError(file: file, key: cert == nil ? "admin.tls.cert" : "admin.tls.key", "admin.tls needs both cert and key",
                              fix: "name the PEM certificate chain and its private key")
        }
        if scheme == .https, !loopback, cert == nil {
            throw ConfigError(file: keyFile, key: "admin.tls", "an admin listener off loopback needs a real certificate",
                              fix: "set admin.tls.cert and admin.tls.key (the development CA serves loopback only)")
        }
        var lifetime = Duration.seconds(8 * 3600)
        if let minutes = config?.session_minutes {
            guard minutes.isFinite, minutes >= 1, minutes <= 7 * 24 * 60 else {
                throw ConfigError(file: file, key: "admin.session_minutes", "\(minutes) is out of range", fix: "use 1 to 10080 minutes")
            }
            lifetime = .seconds(minutes * 60)
        }
        var idle = Duration.seconds(30 * 60)
        if let minutes = config?.idle_minutes {
            guard minutes.isFinite, minutes >= 1, minutes <= 24 * 60 else {
                throw ConfigError(file: file, key: "admin.idle_minutes", "\(minutes) is out of range", fix: "use 1 to 1440 minutes")
            }
            idle = .seconds(minutes * 60)
        }
        let ldap = try config?.ldap.map { l throws(ConfigError) in try resolveLDAP(l, file: file) }
        return AdminSettings(scheme: scheme, host: host, port: port, certificateFile: cert, keyFile: tlsKey, tokenFile: config?.token_file,
                             usersFile: config?.users_file, hostnames: config?.hostnames ?? [], sessionLifetime: lifetime,
                             sessionIdleTimeout: idle, ldap: ldap)
    }

    static func resolveLDAP(_ c: AdminLDAPConfig, file: String?) throws(ConfigError) -> LDAPLoginConfiguration {
        let url: LDAPURL
        do {
            url = try LDAPURL(parsing: c.url)
        } catch {
            throw ConfigError(file: file, key: "admin.ldap.url", "'\(c.url)' is not an LDAP URL: \(error)",
                              fix: "use ldaps://HOST:636 or ldap://HOST:389 with start_tls: true")
        }
        let lookup: LDAPDirectoryConfiguration.UserLookup
        switch (c.bind_dn, c.search_base) {
        case (let template?, nil): lookup = .bindDNTemplate(template)
        case (nil, let base?): lookup = .search(base: base, filter: c.search_filter ?? "(uid=%u)")
        default:
            throw ConfigError(file: file, key: "admin.ldap", "name exactly one of bind_dn (a DN template with %u) or search_base",
                              fix: "e.g. bind_dn: uid=%u,ou=people,dc=example,dc=org")
        }
        let groups: LDAPDirectoryConfiguration.GroupLookup
        if let base = c.group_base {
            groups = .search(base: base, filter: c.group_filter ?? "(member=%d)", attribute: c.group_attribute ?? "cn")
        } else if let attribute = c.member_attribute {
            groups = .userAttribute(attribute)
        } else {
            throw ConfigError(file: file, key: "admin.ldap.group_base", "roles come from groups: set group_base or member_attribute",
                              fix: "e.g. group_base: ou=groups,dc=example,dc=org")
        }
        var servicePassword: String?
        if let path = c.service_password_file {
            do {
                try PKIFiles.checkKeyPermissions(path, what: "LDAP service password")
                servicePassword = try PKIFiles.readText(path, what: "LDAP service password").trimmingCharacters(in: .newlines)
            } catch {
                throw ConfigError(file: file, key: "admin.ldap.service_password_file", "\(error)", fix: "chmod 600 the file")
            }
        }
        var roles: [String: AdminRole] = [:]
        for (group, name) in c.role_map {
            guard let role = AdminRole(rawValue: name) else {
                throw ConfigError(file: file, key: "admin.ldap.role_map.\(group)", "unknown role '\(name)'", fix: "use viewer, operator or admin")
            }
            roles[group] = role
        }
        guard !roles.isEmpty else {
            throw ConfigError(file: file, key: "admin.ldap.role_map", "no group is mapped to a role", fix: "e.g. role_map: {admins: admin}")
        }
        let timeout = Duration.seconds(c.timeout_seconds ?? 5)
        let directory = LDAPDirectoryConfiguration(
            url: url, tls: .init(caFile: c.ca_file), startTLS: c.start_tls ?? false, userLookup: lookup,
            serviceBindDN: c.service_dn, serviceBindPassword: servicePassword, groupLookup: groups,
            connectTimeout: timeout, operationTimeout: timeout)
        do {
            try directory.validate()
        } catch {
            throw ConfigError(file: file, key: "admin.ldap.\(error.key)", error.message)
        }
        return LDAPLoginConfiguration(directory: directory, roleMap: roles)
    }
}
