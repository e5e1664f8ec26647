import BastionIdentity
import BastionLDAP
import BastionSecurity
import Foundation

/// One entry of `auth.backends`, checked: every key belongs to its type, every value is usable.
/// Files the backend needs (secrets, keys, passwords) are read here, so a bad one stops the
/// broker at startup (exit 2) or rejects a reload, naming `auth.backends[N].KEY`.
struct BackendSpec: Sendable {
    enum Kind: Sendable {
        case file
        case jwt(JWTSettings)
        case postgres(PostgresSettings)
        case ldap(LDAPDirectoryConfiguration, roleMap: [String: [String]])
        case http(WebhookSettings)
    }

    /// `auth.backends[2]`
    let key: String
    /// `auth.backends[2] postgres`, in logs, alerts and rule sources.
    let name: String
    let kind: Kind
    let limits: IdentityChain.Limits

    static let keysByType: [String: Set<String>] = [
        "file": [],
        "jwt": ["secret_file", "algorithms", "issuer", "audience", "username_claim", "clientid_claim", "acl_claims",
                "disconnect_on_expiry", "leeway"],
        "jwks": ["jwks_file", "algorithms", "issuer", "audience", "username_claim", "clientid_claim", "acl_claims",
                 "disconnect_on_expiry", "leeway"],
        "postgres": ["url", "password_file", "password_query", "acl_query", "tls", "ca_file", "max_connections"],
        "ldap": ["url", "bind_dn", "search_base", "search_filter", "service_bind_dn", "service_password_file", "group_base",
                 "group_filter", "group_attribute", "member_attribute", "start_tls", "ca_file", "cert_file", "key_file", "role_map"],
        "http": ["url", "certificates", "ca_file", "insecure_plaintext", "max_connections"],
    ]
    static let commonKeys: Set<String> = ["type", "timeout", "max_concurrent", "max_queued"]

    /// Parses `auth.backends`. A password file not listed as `{type: file}` is asked first.
    static func parse(auth: AuthConfig, configPath: String?) throws(ConfigError) -> [BackendSpec] {
        guard let configs = auth.backends, !configs.isEmpty else { return [] }
        var specs: [BackendSpec] = []
        for (index, config) in configs.enumerated() {
            specs.append(try parse(config, index: index, auth: auth, configPath: configPath))
        }
        let files = specs.filter { if case .file = $0.kind { true } else { false } }
        guard files.count <= 1 else {
            throw ConfigError(file: configPath, key: files[1].key + ".type", "the password file is listed twice", fix: "keep one {type: file}")
        }
        if files.isEmpty, auth.password_file != nil {
            specs.insert(BackendSpec(key: "auth.password_file", name: "file", kind: .file, limits: IdentityChain.Limits()), at: 0)
        }
        return specs
    }

    private static func parse(_ config: BackendConfig, index: Int, auth: AuthConfig, configPath: String?) throws(ConfigError) -> BackendSpec {
        let key = "auth.backends[\(index)]"
        func fail(_ field: String, _ message: String, fix: String? = nil) -> ConfigError {
            ConfigError(file: configPath, key: field.isEmpty ? key : "\(key).\(field)", message, fix: fix)
        }
        guard let allowed = keysByType[config.type] else {
            throw fail("type", "unknown backend type '\(config.type)'", fix: "use file, jwt, jwks, postgres, ldap or http")
        }
        for field in setKeys(config) where !allowed.contains(field) && !commonKeys.contains(field) {
            throw fail(field, "not a key of a \(config.type) backend", fix: "see docs/auth-backends.md for the keys of each type")
        }
        let defaultTimeout: Double = config.type == "http" ? 2 : 5
        let timeout = config.timeout ?? defaultTimeout
        guard timeout > 0, timeout <= 60 else { throw fail("timeout", "\(timeout) is out of range", fix: "use seconds between 0 and 60") }
        let maxConcurrent = config.max_concurrent ?? 16
        guard (1...1024).contains(maxConcurrent) else { throw fail("max_concurrent", "\(maxConcurrent) is out of range", fix: "use 1 to 1024") }
        let maxQueued = config.max_queued ?? 256
        guard (0...100_000).contains(maxQueued) else { throw fail("max_queued", "\(maxQueued) is out of range", fix: "use 0 to 100000") }
        let duration = Duration.milliseconds(Int64(timeout * 1000))
        let limits = IdentityChain.Limits(maximumConcurrent: maxConcurrent, maximumQueued: maxQueued, timeout: duration)
        let name = "\(key) \(config.type)"

        let kind: Kind
        switch config.type {
        case "file":
            guard auth.password_file != nil else {
                throw fail("type", "{type: file} needs auth.password_file", fix: "set auth.password_file or remove the entry")
            }
            kind = .file
        case "jwt", "jwks":
            kind = .jwt(try jwtSettings(config, fail: fail))
        case "postgres":
            kind = .postgres(try postgresSettings(config, timeout: duration, fail: fail))
        case "ldap":
            kind = try ldapSettings(config, timeout: duration, auth: auth, fail: fail)
        default:
            kind = .http(try webhookSettings(config, timeout: duration, fail: fail))
        }
        return BackendSpec(key: key, name: name, kind: kind, limits: limits)
    }

    /// The keys an entry sets (non-nil fields), by their YAML names.
    static func setKeys(_ config: BackendConfig) -> [String] {
        Mirror(reflecting: config).children.compactMap { child in
            guard let label = child.label else { return nil }
            let value = Mirror(reflecting: child.value)
            if value.displayStyle == .optional, value.children.isEmpty { return nil }
            return label
        }
    }

    private static func jwtSettings(_ config: BackendConfig, fail: (String, String, String?) -> ConfigError) throws(ConfigError) -> JWTSettings {
        let keys: JWTSettings.Keys
        if config.type == "jwt" {
            guard let path = config.secret_file else { throw fail("secret_file", "a jwt backend needs secret_file", "name a file holding the shared secret (at least 32 bytes)") }
            do {
                try SecretFiles.makePrivate(path, key: "secret_file")
            } catch {
                throw fail("secret_file", error.message, error.fix)
            }
            keys = .sharedSecretFile(path)
        } else {
            guard let path = config.jwks_file else { throw fail("jwks_file", "a jwks backend needs jwks_file", "name a JWKS file of public keys") }
            keys = .jwksFile(path)
        }
        var algorithms: [JWTAlgorithmName]?
        if let names = config.algorithms {
            guard !names.isEmpty else { throw fail("algorithms", "must not be empty", nil) }
            algorithms = []
            for name in names {
                guard name.lowercased() != "none" else {
                    throw fail("algorithms", "the none algorithm (unsigned tokens) is never accepted", nil)
                }
                guard let algorithm = JWTAlgorithmName(rawValue: name) else {
                    throw fail("algorithms", "unknown algorithm '\(name)'", "use \(JWTAlgorithmName.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                algorithms?.append(algorithm)
            }
        }
        if let claim = config.username_claim, claim.isEmpty { throw fail("username_claim", "must not be empty", nil) }
        if let claim = config.clientid_claim, claim.isEmpty { throw fail("clientid_claim", "must not be empty", nil) }
        let leeway = config.leeway ?? 0
        guard leeway >= 0, leeway <= 300 else { throw fail("leeway", "\(leeway) is out of range", "use 0 to 300 seconds") }
        var claims = JWTSettings.ACLClaims()
        if let acl = config.acl_claims {
            claims = JWTSettings.ACLClaims(publish: acl.publish, subscribe: acl.subscribe, readwrite: acl.readwrite, deny: acl.deny)
            for name in [acl.publish, acl.subscribe, acl.readwrite, acl.deny].compactMap({ $0 }) where name.isEmpty {
                throw fail("acl_claims", "claim names must not be empty", nil)
            }
        }
        let audiences = config.audience?.values ?? []
        if audiences.contains(where: \.isEmpty) { throw fail("audience", "must not be empty", nil) }
        if let issuer = config.issuer, issuer.isEmpty { throw fail("issuer", "must not be empty", nil) }
        return JWTSettings(
            keys: keys, algorithms: algorithms, issuer: config.issuer, audiences: audiences,
            usernameClaim: config.username_claim ?? "sub", clientIDClaim: config.clientid_claim, aclClaims: claims,
            disconnectOnExpiry: config.disconnect_on_expiry ?? false, leeway: leeway)
    }

    private static func postgresSettings(_ config: BackendConfig, timeout: Duration,
                                         fail: (String, String, String?) -> ConfigError) throws(ConfigError) -> PostgresSettings {
        guard let url = config.url else { throw fail("url", "a postgres backend needs url", "postgres://USER@HOST:PORT/DATABASE") }
        let target: (host: String, port: Int, username: String, database: String?)
        do {
            target = try PostgresSettings.parseURL(url)
        } catch {
            throw fail(error.key, error.message, nil)
        }
        guard let passwordQuery = config.password_query, !passwordQuery.isEmpty else {
            throw fail("password_query", "a postgres backend needs password_query", "e.g. SELECT password_hash FROM mqtt_users WHERE username = $1")
        }
        var password: String?
        if let path = config.password_file { password = try readSecret(path, key: "password_file", fail: fail) }
        let loopback = PostgresSettings.isLoopback(target.host)
        let tls = config.tls ?? !loopback
        if config.ca_file != nil, !tls { throw fail("ca_file", "is set but tls is off", nil) }
        let connections = config.max_connections ?? 8
        guard (1...100).contains(connections) else { throw fail("max_connections", "\(connections) is out of range", "use 1 to 100") }
        let settings = PostgresSettings(
            host: target.host, port: target.port, username: target.username, database: target.database, password: password,
            tls: tls, caFile: config.ca_file, passwordQuery: passwordQuery, aclQuery: config.acl_query,
            maximumConnections: connections, queryTimeout: timeout)
        do {
            _ = try PostgresSettings.placeholders(in: passwordQuery, key: "password_query", requireUsername: true)
            if let acl = config.acl_query { _ = try PostgresSettings.placeholders(in: acl, key: "acl_query", requireUsername: false) }
        } catch {
            throw fail(error.key, error.message, nil)
        }
        return settings
    }

    private static func ldapSettings(_ config: BackendConfig, timeout: Duration, auth: AuthConfig,
                                     fail: (String, String, String?) -> ConfigError) throws(ConfigError) -> Kind {
        guard let urlText = config.url else { throw fail("url", "an ldap backend needs url", "ldaps://HOST or ldap://HOST with start_tls") }
        let url: LDAPURL
        do {
            url = try LDAPURL(parsing: urlText)
        } catch {
            throw fail("url", "\(error)", nil)
        }
        let userLookup: LDAPDirectoryConfiguration.UserLookup
        switch (config.bind_dn, config.search_base) {
        case (let template?, nil): userLookup = .bindDNTemplate(template)
        case (nil, let base?): userLookup = .search(base: base, filter: config.search_filter ?? "(uid=%u)")
        case (nil, nil): throw fail("bind_dn", "an ldap backend needs bind_dn (a DN with %u) or search_base", nil)
        case (_?, _?): throw fail("search_base", "set bind_dn or search_base, not both", nil)
        }
        if config.search_filter != nil, config.search_base == nil { throw fail("search_filter", "needs search_base", nil) }
        var servicePassword: String?
        if let path = config.service_password_file { servicePassword = try readSecret(path, key: "service_password_file", fail: fail) }
        let groupLookup: LDAPDirectoryConfiguration.GroupLookup
        switch (config.group_base, config.member_attribute) {
        case (let base?, nil):
            groupLookup = .search(base: base, filter: config.group_filter ?? "(member=%d)", attribute: config.group_attribute ?? "cn")
        case (nil, let attribute?): groupLookup = .userAttribute(attribute)
        case (nil, nil):
            if config.group_filter != nil || config.group_attribute != nil { throw fail("group_base", "group_filter and group_attribute need group_base", nil) }
            groupLookup = .none
        case (_?, _?): throw fail("member_attribute", "set group_base or member_attribute, not both", nil)
        }
        let directory = LDAPDirectoryConfiguration(
            url: url, tls: .init(caFile: config.ca_file, certificateFile: config.cert_file, keyFile: config.key_file),
            startTLS: config.start_tls ?? false, userLookup: userLookup, serviceBindDN: config.service_bind_dn,
            serviceBindPassword: servicePassword, groupLookup: groupLookup, connectTimeout: timeout, operationTimeout: timeout)
        do {
            try directory.validate()
        } catch {
            let renamed = [
                "bind_dn_template": "bind_dn", "bind_dn": "service_bind_dn", "bind_password": "service_password_file",
                "member_of_attribute": "member_attribute", "tls.ca": "ca_file", "tls.cert": "cert_file", "tls.key": "key_file",
                "tls": "ca_file", "connect_timeout": "timeout", "operation_timeout": "timeout",
            ][error.key] ?? error.key
            throw fail(renamed, error.message, nil)
        }
        var roleMap: [String: [String]] = [:]
        for (group, roles) in config.role_map ?? [:] {
            for role in roles.values where auth.roles?[role] == nil {
                throw fail("role_map.\(group)", "role '\(role)' is not defined under auth.roles", "define it (members may be empty: roles: {\(role): []})")
            }
            roleMap[group] = roles.values
        }
        return .ldap(directory, roleMap: roleMap)
    }

    private static func webhookSettings(_ config: BackendConfig, timeout: Duration,
                                        fail: (String, String, String?) -> ConfigError) throws(ConfigError) -> WebhookSettings {
        guard let url = config.url else { throw fail("url", "an http backend needs url", "http://127.0.0.1:8080/mqtt/auth") }
        guard let components = URLComponents(string: url), let scheme = components.scheme, scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else { throw fail("url", "expected http://HOST[:PORT]/PATH or https://…", nil) }
        if components.user != nil || components.password != nil { throw fail("url", "credentials in the URL are not supported", nil) }
        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1"
        if scheme == "http", !loopback, config.insecure_plaintext != true {
            throw fail("url", "http:// to \(host) would send passwords in clear text", "use https:// or set insecure_plaintext: true")
        }
        if config.ca_file != nil, scheme != "https" { throw fail("ca_file", "is only for https:// URLs", nil) }
        let connections = config.max_connections ?? 16
        guard (1...1024).contains(connections) else { throw fail("max_connections", "\(connections) is out of range", "use 1 to 1024") }
        return WebhookSettings(url: url, timeout: timeout, certificates: config.certificates ?? false, caFile: config.ca_file,
                               maximumConnections: connections)
    }

    /// A secret file's content without the trailing newline editors add.
    private static func readSecret(_ path: String, key: String, fail: (String, String, String?) -> ConfigError) throws(ConfigError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw fail(key, "cannot read \(path)", nil) }
        do {
            try SecretFiles.makePrivate(path, key: key)
        } catch {
            throw fail(key, error.message, error.fix)
        }
        var secret = text
        while secret.hasSuffix("\n") || secret.hasSuffix("\r") { secret.removeLast() }
        guard !secret.isEmpty else { throw fail(key, "\(path) is empty", nil) }
        return secret
    }
}
