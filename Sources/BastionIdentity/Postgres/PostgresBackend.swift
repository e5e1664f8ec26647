import BastionCore
import BastionSecurity
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// `type: postgres`: the user's password hash (and, optionally, ACL rows) from a PostgreSQL
/// table, through a connection pool. Queries are the operator's text with the user name and
/// client id bound as parameters (`$1`, `$2`, extended query protocol): a hostile user name is
/// data, never SQL. No row: no opinion; a hash that does not verify: deny; a hash in an unknown
/// format, several rows, a bad ACL row, an error or a timeout: unavailable (fail closed).
public final class PostgresBackend: IdentityBackend {
    public let name: String
    let settings: PostgresSettings
    let client: PostgresClient
    let runner: BlockingRunner
    let logger: Logger
    private let passwordBinds: Int
    private let aclBinds: Int
    private let runTask: Task<Void, Never>

    public init(name: String, settings: PostgresSettings, runner: BlockingRunner, eventLoopGroup: any EventLoopGroup,
                logger: Logger) throws(PostgresSettingsError) {
        self.name = name
        self.settings = settings
        self.runner = runner
        self.logger = logger
        passwordBinds = try PostgresSettings.placeholders(in: settings.passwordQuery, key: "password_query", requireUsername: true)
        aclBinds = try settings.aclQuery.map { query throws(PostgresSettingsError) in
            try PostgresSettings.placeholders(in: query, key: "acl_query", requireUsername: false)
        } ?? 0

        let tls: PostgresClient.Configuration.TLS
        if settings.tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            configuration.certificateVerification = .fullVerification
            if let caFile = settings.caFile {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                } catch {
                    throw PostgresSettingsError(key: "ca_file", "cannot read \(caFile): \(error)")
                }
            }
            tls = .require(configuration)
        } else {
            tls = .disable
        }
        var configuration = PostgresClient.Configuration(
            host: settings.host, port: settings.port, username: settings.username, password: settings.password,
            database: settings.database, tls: tls)
        configuration.options.maximumConnections = settings.maximumConnections
        configuration.options.connectTimeout = settings.queryTimeout
        // The server cancels a query that outlives the timeout, so it does not hold a connection.
        let milliseconds = settings.queryTimeout.components.seconds * 1000 + settings.queryTimeout.components.attoseconds / 1_000_000_000_000_000
        configuration.options.additionalStartupParameters = [("statement_timeout", "\(max(1, milliseconds))")]
        let client = PostgresClient(configuration: configuration, eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
        self.client = client
        runTask = Task { await client.run() }
    }

    public func applies(to request: AuthenticationRequest) -> Bool {
        request.username != nil && request.password != nil
    }

    public func decide(_ request: AuthenticationRequest) async -> BackendDecision {
        guard let username = request.username, let password = request.password else { return .noOpinion }
        let row: String??
        do {
            row = try await passwordHash(of: username, clientID: request.clientID)
        } catch {
            return .unavailable(describe(error))
        }
        guard let found = row else { return .noOpinion }
        guard let text = found else { return .deny(BackendDenial(.badCredentials, "the user has no password hash")) }
        guard let hash = StoredPasswordHash(text) else { return .unavailable("password_query returned a hash in an unknown format") }
        guard let matched = await runner.run({ hash.matches(password) }) else { return .unavailable("the hashing pool is not running") }
        guard matched else { return .deny(BackendDenial(.badCredentials, "wrong password")) }
        return await grant(username: username, clientID: request.clientID)
    }

    /// The allow for a user whose credentials checked out: with the ACL rows when an
    /// `acl_query` is configured.
    func grant(username: String, clientID: String) async -> BackendDecision {
        guard settings.aclQuery != nil else { return .allow(BackendGrant(username: username)) }
        do {
            return .allow(BackendGrant(username: username, rules: try await aclRules(of: username, clientID: clientID)))
        } catch let error as ACLRowError {
            return .unavailable(error.message)
        } catch {
            return .unavailable(describe(error))
        }
    }

    /// The hash column of the user's row: nil without a row, `.some(nil)` for SQL NULL.
    func passwordHash(of username: String, clientID: String) async throws -> String?? {
        let rows = try await client.query(query(settings.passwordQuery, binds: passwordBinds, username, clientID), logger: logger)
        var result: String??
        for try await row in rows {
            guard result == nil else { throw ACLRowError(message: "password_query returned more than one row") }
            guard let cell = row.first(where: { _ in true }) else { throw ACLRowError(message: "password_query returned no column") }
            result = .some(try cell.decode(String?.self))
        }
        return result
    }

    func aclRules(of username: String, clientID: String) async throws -> [BackendACLRule] {
        guard let aclQuery = settings.aclQuery else { return [] }
        let rows = try await client.query(query(aclQuery, binds: aclBinds, username, clientID), logger: logger)
        var rules: [BackendACLRule] = []
        for try await row in rows {
            guard rules.count < GrantValidation.maximumRules else { throw ACLRowError(message: "acl_query returned more than \(GrantValidation.maximumRules) rows") }
            let cells = Array(row)
            guard cells.count >= 2 else { throw ACLRowError(message: "acl_query must return two columns: access, topic") }
            let access: BackendACLRule.Access?
            switch cells[0].dataType {
            case .int2, .int4, .int8: access = ACLRow.access(number: try cells[0].decode(Int.self))
            default: access = (try? cells[0].decode(String.self)).flatMap(ACLRow.access(text:))
            }
            guard let access else { throw ACLRowError(message: "acl_query returned an access that is not read, write, readwrite, deny, subscribe or 1-4") }
            guard let topic = try? cells[1].decode(String.self) else { throw ACLRowError(message: "acl_query returned a topic that is not text") }
            rules.append(BackendACLRule(access: access, filter: topic, source: "\(name) acl_query"))
        }
        return rules
    }

    private func query(_ sql: String, binds count: Int, _ username: String, _ clientID: String) -> PostgresQuery {
        var binds = PostgresBindings(capacity: count)
        if count >= 1 { binds.append(username) }
        if count >= 2 { binds.append(clientID) }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// The server's message without the query text or parameters (which hold the user name).
    private func describe(_ error: any Error) -> String {
        if let error = error as? ACLRowError { return error.message }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return "PostgreSQL: \(message)" }
            return "PostgreSQL: \(error.code)"
        }
        return "PostgreSQL: \(type(of: error))"
    }

    public func shutdown() async {
        runTask.cancel()
    }

    struct ACLRowError: Error {
        var message: String
    }
}

extension PostgresBackend: ScramCredentialSource {
    public func scramLookup(username: String, algorithm: ScramAlgorithm) async -> ScramLookup {
        do {
            guard let found = try await passwordHash(of: username, clientID: "") else { return .unknown }
            guard let text = found, let keys = StoredPasswordHash(text)?.scramKeys, keys.algorithm == algorithm else { return .unusable }
            return .found(keys)
        } catch {
            return .unavailable(describe(error))
        }
    }

    public func scramGrant(username: String, clientID: String) async -> BackendDecision {
        await grant(username: username, clientID: clientID)
    }
}
