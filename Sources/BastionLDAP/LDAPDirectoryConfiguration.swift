import NIOSSL

/// How `LDAPDirectoryAuthenticator` finds users and their groups. Validate it with `validate()`
/// when the configuration is loaded; the authenticator refuses an invalid one.
public struct LDAPDirectoryConfiguration: Sendable, Hashable {
    /// How a user name becomes the DN to bind as.
    public enum UserLookup: Sendable, Hashable {
        /// Bind as the DN the template gives, e.g. `uid=%u,ou=people,dc=example,dc=org`; `%u` is
        /// the RFC 4514-escaped user name.
        case bindDNTemplate(String)
        /// Search `base`'s subtree with the filter template, e.g. `(uid=%u)`, `%u` being the
        /// RFC 4515-escaped user name; exactly one entry must match; then bind as that entry.
        /// The search runs as `serviceBindDN` when set, otherwise anonymously.
        case search(base: String, filter: String)
    }

    /// Where the user's groups come from.
    public enum GroupLookup: Sendable, Hashable {
        case none
        /// Search `base`'s subtree with the filter template (`%d` = the user's DN, `%u` = the user
        /// name, both RFC 4515-escaped); group names are the values of `attribute`. Runs as the
        /// service account when one is configured, otherwise as the user.
        case search(base: String, filter: String = "(member=%d)", attribute: String = "cn")
        /// Read an attribute of the user's entry that lists group DNs (`memberOf`); group names
        /// are the values of those DNs' first RDNs (`cn=operators,ou=groups,…` → `operators`).
        case userAttribute(String = "memberOf")
    }

    /// Certificates for TLS (ldaps:// or StartTLS). The server's certificate and host name are
    /// always verified.
    public struct TLS: Sendable, Hashable {
        /// PEM file of the CAs that issue the server's certificate; nil uses the system's roots.
        public var caFile: String?
        /// PEM client certificate chain and key, for servers that ask for one.
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public var url: LDAPURL
    public var tls: TLS
    /// Upgrade an ldap:// connection with StartTLS before anything else is sent.
    public var startTLS: Bool
    public var userLookup: UserLookup
    /// Service account for searches; both or neither of DN and password.
    public var serviceBindDN: String?
    public var serviceBindPassword: String?
    public var groupLookup: GroupLookup
    public var connectTimeout: Duration
    public var operationTimeout: Duration
    /// Most groups (group entries) one user may have; more makes the login unavailable.
    public var maximumGroups: Int

    public init(
        url: LDAPURL,
        tls: TLS = TLS(),
        startTLS: Bool = false,
        userLookup: UserLookup,
        serviceBindDN: String? = nil,
        serviceBindPassword: String? = nil,
        groupLookup: GroupLookup = .none,
        connectTimeout: Duration = .seconds(5),
        operationTimeout: Duration = .seconds(5),
        maximumGroups: Int = 1000
    ) {
        self.url = url
        self.tls = tls
        self.startTLS = startTLS
        self.userLookup = userLookup
        self.serviceBindDN = serviceBindDN
        self.serviceBindPassword = serviceBindPassword
        self.groupLookup = groupLookup
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.maximumGroups = maximumGroups
    }

    /// Checks everything that can be checked without the server, TLS files included. The error
    /// names the setting (`key`, in the configuration file's snake_case) and what to change.
    public func validate() throws(LDAPConfigurationError) {
        _ = try ValidatedDirectoryConfiguration(self)
    }
}

extension LDAPDirectoryConfiguration: CustomStringConvertible {
    /// Everything but the service account's password, which is never printed.
    public var description: String {
        "LDAPDirectoryConfiguration(url: \(url), startTLS: \(startTLS), userLookup: \(userLookup), "
            + "serviceBindDN: \(serviceBindDN ?? "none"), serviceBindPassword: \(serviceBindPassword == nil ? "none" : "<redacted>"), "
            + "groupLookup: \(groupLookup), tls: \(tls))"
    }
}

/// A configuration refused by `LDAPDirectoryConfiguration.validate()`.
public struct LDAPConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting at fault, as spelled in the configuration file (`url`, `start_tls`, `tls.ca`, …).
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

/// A configuration whose templates are parsed and whose TLS material is loaded, ready for use
/// by every login without touching the file system again.
struct ValidatedDirectoryConfiguration: Sendable {
    enum UserLookup: Sendable {
        case template(LDAPTemplate)
        case search(base: String, filter: LDAPTemplate)
    }

    enum GroupLookup: Sendable {
        case none
        case search(base: String, filter: LDAPTemplate, attribute: String)
        case userAttribute(String)
    }

    let configuration: LDAPDirectoryConfiguration
    let userLookup: UserLookup
    let groupLookup: GroupLookup
    let tls: TLSConfiguration?

    init(_ configuration: LDAPDirectoryConfiguration) throws(LDAPConfigurationError) {
        func fail(_ key: String, _ message: String) -> LDAPConfigurationError {
            LDAPConfigurationError(key: key, message: message)
        }
        self.configuration = configuration
        let url = configuration.url

        if configuration.startTLS, url.scheme == .ldaps {
            throw fail("start_tls", "StartTLS is for ldap:// URLs; \(url) already uses TLS")
        }
        if url.scheme == .ldap, !configuration.startTLS, !url.isLoopback {
            throw fail("url", "\(url) would send passwords in clear text to a host that is not loopback; use ldaps:// or set start_tls: true")
        }
        guard configuration.connectTimeout > .zero else { throw fail("connect_timeout", "must be positive") }
        guard configuration.operationTimeout > .zero else { throw fail("operation_timeout", "must be positive") }
        guard configuration.maximumGroups > 0 else { throw fail("maximum_groups", "must be positive") }

        switch (configuration.serviceBindDN, configuration.serviceBindPassword) {
        case (nil, nil): break
        case (let dn?, let password?):
            guard !dn.isEmpty else { throw fail("bind_dn", "must not be empty") }
            guard !password.isEmpty else {
                throw fail("bind_password", "must not be empty (an empty password is an unauthenticated bind that checks nothing)")
            }
        case (nil, _?): throw fail("bind_dn", "bind_password is set without bind_dn")
        case (_?, nil): throw fail("bind_password", "bind_dn is set without bind_password")
        }

        switch configuration.userLookup {
        case .bindDNTemplate(let text):
            let template = try Self.template(text, allowed: ["u"], key: "bind_dn_template")
            guard template.placeholders.contains("u") else { throw fail("bind_dn_template", "must contain %u") }
            userLookup = .template(template)
        case .search(let base, let text):
            let template = try Self.template(text, allowed: ["u"], key: "search_filter")
            guard template.placeholders.contains("u") else { throw fail("search_filter", "must contain %u") }
            try Self.checkFilter(template, key: "search_filter")
            guard !base.isEmpty else { throw fail("search_base", "must not be empty") }
            userLookup = .search(base: base, filter: template)
        }

        switch configuration.groupLookup {
        case .none:
            groupLookup = .none
        case .search(let base, let text, let attribute):
            let template = try Self.template(text, allowed: ["u", "d"], key: "group_filter")
            guard !template.placeholders.isEmpty else { throw fail("group_filter", "must contain %d or %u") }
            try Self.checkFilter(template, key: "group_filter")
            guard !base.isEmpty else { throw fail("group_base", "must not be empty") }
            guard (try? LDAPFilter(parsing: "(\(attribute)=*)")) != nil else {
                throw fail("group_attribute", "\"\(attribute)\" is not an attribute name")
            }
            groupLookup = .search(base: base, filter: template, attribute: attribute)
        case .userAttribute(let attribute):
            guard (try? LDAPFilter(parsing: "(\(attribute)=*)")) != nil else {
                throw fail("member_of_attribute", "\"\(attribute)\" is not an attribute name")
            }
            groupLookup = .userAttribute(attribute)
        }

        tls = try Self.loadTLS(configuration)
    }

    private static func template(_ text: String, allowed: Set<Character>, key: String) throws(LDAPConfigurationError) -> LDAPTemplate {
        do {
            return try LDAPTemplate(text, allowed: allowed)
        } catch {
            throw LDAPConfigurationError(key: key, message: error.reason)
        }
    }

    /// The filter must parse whatever value is substituted; escaping keeps values from changing
    /// its structure, so one sample value settles it.
    private static func checkFilter(_ template: LDAPTemplate, key: String) throws(LDAPConfigurationError) {
        do {
            _ = try LDAPFilter(parsing: template.substitute(["u": "x", "d": "x"]))
        } catch {
            throw LDAPConfigurationError(key: key, message: error.description)
        }
    }

    /// Loads CA, certificate and key now, so a bad file is reported at configuration load and
    /// logins do not read files.
    private static func loadTLS(_ configuration: LDAPDirectoryConfiguration) throws(LDAPConfigurationError) -> TLSConfiguration? {
        let settings = configuration.tls
        guard configuration.url.scheme == .ldaps || configuration.startTLS else {
            if settings.caFile != nil || settings.certificateFile != nil || settings.keyFile != nil {
                throw LDAPConfigurationError(key: "tls", message: "TLS files are set but the connection does not use TLS (ldaps:// or start_tls)")
            }
            return nil
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(caFile)
                guard !roots.isEmpty else { throw LDAPConfigurationError(key: "tls.ca", message: "\(caFile) holds no certificate") }
                tls.trustRoots = .certificates(roots)
            } catch let error as LDAPConfigurationError {
                throw error
            } catch {
                throw LDAPConfigurationError(key: "tls.ca", message: "cannot read \(caFile): \(error)")
            }
        }
        switch (settings.certificateFile, settings.keyFile) {
        case (nil, nil): break
        case (let certificateFile?, let keyFile?):
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            } catch {
                throw LDAPConfigurationError(key: "tls.cert", message: "cannot read \(certificateFile): \(error)")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw LDAPConfigurationError(key: "tls.key", message: "cannot read \(keyFile): \(error)")
            }
        case (nil, _?): throw LDAPConfigurationError(key: "tls.cert", message: "tls.key is set without tls.cert")
        case (_?, nil): throw LDAPConfigurationError(key: "tls.key", message: "tls.cert is set without tls.key")
        }
        do {
            _ = try NIOSSLContext(configuration: tls)
        } catch {
            throw LDAPConfigurationError(key: "tls", message: "unusable TLS settings: \(error)")
        }
        return tls
    }
}
