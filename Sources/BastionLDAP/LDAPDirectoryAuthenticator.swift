import Logging
import NIOCore
import NIOPosix

/// The result of a login against the directory. Callers must treat anything but
/// `.authenticated` as a refusal (fail closed), `.unavailable` included.
public enum LDAPAuthenticationOutcome: Sendable, Hashable {
    /// The password was accepted for `dn`; `groups` are the names of the user's groups, sorted.
    case authenticated(dn: String, groups: [String])
    /// Wrong password, unknown user, or a user name or password refused before asking the server.
    case invalidCredentials
    /// The directory could not decide: server down, timeout, TLS failure, protocol error,
    /// unexpected result. The text says why, for the log; never show it to the user.
    case unavailable(String)
}

/// Checks a user name and password against a directory server and reads the user's groups:
/// the login logic shared by the admin console and the MQTT identity backends. One connection
/// per login, closed afterwards.
public struct LDAPDirectoryAuthenticator: Sendable {
    /// Longest user name accepted, in UTF-8 bytes.
    public static let maximumUsernameLength = 256

    public let configuration: LDAPDirectoryConfiguration
    private let validated: ValidatedDirectoryConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger

    /// Validates the configuration (see `LDAPDirectoryConfiguration.validate()`) and loads its
    /// TLS files.
    public init(
        configuration: LDAPDirectoryConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "bastion.ldap")
    ) throws(LDAPConfigurationError) {
        self.configuration = configuration
        self.validated = try ValidatedDirectoryConfiguration(configuration)
        self.group = group
        self.logger = logger
    }

    public func authenticate(username: String, password: String) async -> LDAPAuthenticationOutcome {
        // RFC 4513 §5.1.2: a bind with a DN and an empty password is "unauthenticated" and
        // succeeds on many servers without checking anything.
        guard !password.isEmpty else { return .invalidCredentials }
        guard !username.isEmpty, username.utf8.count <= Self.maximumUsernameLength, !username.utf8.contains(0) else {
            return .invalidCredentials
        }
        let connection: LDAPConnection
        do {
            connection = try await LDAPConnection.connect(
                to: configuration.url,
                tls: configuration.url.scheme == .ldaps ? validated.tls : nil,
                connectTimeout: configuration.connectTimeout,
                operationTimeout: configuration.operationTimeout,
                group: group,
                logger: logger
            )
        } catch {
            return unavailable(error)
        }
        let outcome: LDAPAuthenticationOutcome
        do {
            outcome = try await login(connection, username: username, password: password)
        } catch {
            outcome = unavailable(error)
        }
        if case .unavailable = outcome {
            await connection.close()
        } else {
            await connection.unbind()
        }
        return outcome
    }

    private func login(_ connection: LDAPConnection, username: String, password: String) async throws(LDAPError) -> LDAPAuthenticationOutcome {
        if configuration.startTLS, let tls = validated.tls {
            try await connection.startTLS(configuration: tls)
        }
        var userDN: String
        var userEntry: LDAPEntry?
        switch validated.userLookup {
        case .template(let template):
            userDN = template.substitute(["u": LDAPDistinguishedName.escapeValue(username)])
        case .search(let base, let filterTemplate):
            if let failure = try await bindServiceAccount(connection) { return failure }
            let filter = try parseFilter(filterTemplate.substitute(["u": LDAPFilter.escape(username)]))
            var attributes = ["1.1"] // no attributes: only the DN is needed
            if case .userAttribute(let attribute) = validated.groupLookup { attributes = [attribute] }
            let entries: [LDAPEntry]
            do {
                entries = try await connection.search(
                    base: base, scope: .wholeSubtree, sizeLimit: 2, filter: filter, attributes: attributes,
                    limits: LDAPSearchLimits(maximumEntries: 2, maximumBytes: 256 * 1024)
                )
            } catch {
                if case .result(let result) = error, result.resultCode == .sizeLimitExceeded { return ambiguous(username) }
                if case .limitExceeded = error { return ambiguous(username) }
                throw error
            }
            guard entries.count <= 1 else { return ambiguous(username) }
            guard let entry = entries.first else {
                logger.debug("LDAP login: no such user", metadata: ["user": "\(username)"])
                return .invalidCredentials
            }
            userDN = entry.dn
            userEntry = entry
        }

        let bind = try await connection.simpleBind(dn: userDN, password: password)
        if let refusal = refusal(of: bind, dn: userDN) { return refusal }

        if userEntry == nil {
            // The directory matches names by its own rules (usually ignoring case and surrounding
            // spaces), so "ALICE " may have bound as uid=alice. Report the entry's DN as the server
            // spells it, so that callers see one identity per entry.
            do {
                var attributes = ["1.1"]
                if case .userAttribute(let attribute) = validated.groupLookup { attributes = [attribute] }
                userEntry = try await connection.search(
                    base: userDN, scope: .baseObject, filter: .present(attribute: "objectClass"), attributes: attributes,
                    limits: LDAPSearchLimits(maximumEntries: 1)
                ).first
            } catch {
                // Users who may not read their own entry keep the DN they bound with.
                guard case .result(let result) = error, [.noSuchObject, .insufficientAccessRights].contains(result.resultCode) else {
                    throw error
                }
            }
            if let userEntry { userDN = userEntry.dn }
        }

        let groups: [String]
        switch validated.groupLookup {
        case .none:
            groups = []
        case .userAttribute(let attribute):
            guard let entry = userEntry else { return .unavailable("the user entry \(userDN) could not be read") }
            let values = entry.stringValues(of: attribute)
            guard values.count <= configuration.maximumGroups else {
                return .unavailable("\(userDN) has more than \(configuration.maximumGroups) groups")
            }
            groups = values.compactMap { LDAPDistinguishedName.firstRDN(of: $0)?.value }
        case .search(let base, let filterTemplate, let attribute):
            if let failure = try await bindServiceAccount(connection) { return failure }
            let filter = try parseFilter(filterTemplate.substitute([
                "u": LDAPFilter.escape(username), "d": LDAPFilter.escape(userDN),
            ]))
            let entries: [LDAPEntry]
            do {
                entries = try await connection.search(
                    base: base, scope: .wholeSubtree, sizeLimit: configuration.maximumGroups + 1, filter: filter,
                    attributes: [attribute], limits: LDAPSearchLimits(maximumEntries: configuration.maximumGroups)
                )
            } catch {
                if case .limitExceeded = error { return .unavailable("\(userDN) has more than \(configuration.maximumGroups) groups") }
                throw error
            }
            groups = entries.flatMap { $0.stringValues(of: attribute) }
        }
        logger.debug("LDAP login succeeded", metadata: ["dn": "\(userDN)", "groups": "\(groups.count)"])
        return .authenticated(dn: userDN, groups: Array(Set(groups)).sorted())
    }

    /// Binds as the service account when one is configured; an outcome when that fails.
    private func bindServiceAccount(_ connection: LDAPConnection) async throws(LDAPError) -> LDAPAuthenticationOutcome? {
        guard let dn = configuration.serviceBindDN, let password = configuration.serviceBindPassword else { return nil }
        let result = try await connection.simpleBind(dn: dn, password: password)
        guard result.isSuccess else {
            logger.warning("LDAP service account bind refused", metadata: ["dn": "\(dn)", "result": "\(result)"])
            return .unavailable("the service account bind was refused: \(result)")
        }
        return nil
    }

    /// What a refused user bind means: the server's "no" is invalid credentials; a result that
    /// says the server cannot decide (busy, unavailable, confidentiality required, …) is not.
    private func refusal(of result: LDAPResult, dn: String) -> LDAPAuthenticationOutcome? {
        switch result.resultCode {
        case .success:
            return nil
        case .invalidCredentials, .inappropriateAuthentication, .insufficientAccessRights, .unwillingToPerform,
             .constraintViolation, .noSuchObject, .invalidDNSyntax:
            logger.debug("LDAP login refused", metadata: ["dn": "\(dn)", "result": "\(result)"])
            return .invalidCredentials
        default:
            return .unavailable("bind as \(dn) answered \(result)")
        }
    }

    private func parseFilter(_ text: String) throws(LDAPError) -> LDAPFilter {
        do {
            return try LDAPFilter(parsing: text)
        } catch {
            // validate() parsed the template already; escaping keeps substituted values inert.
            throw .invalidRequest("\(error)")
        }
    }

    private func ambiguous(_ username: String) -> LDAPAuthenticationOutcome {
        logger.warning("LDAP login: user search matched more than one entry", metadata: ["user": "\(username)"])
        return .unavailable("the user search matched more than one entry")
    }

    private func unavailable(_ error: any Error) -> LDAPAuthenticationOutcome {
        logger.warning("LDAP directory unavailable", metadata: ["error": "\(error)"])
        return .unavailable("\(error)")
    }
}
