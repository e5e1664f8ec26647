import BastionLDAP
import BastionSecurity
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Why the console cannot start; raised before anything binds, so the broker exits with status 2.
public struct AdminSetupError: Error, CustomStringConvertible, Sendable {
    public var key: String
    public var description: String

    public init(key: String, _ description: String) {
        self.key = key
        self.description = description
    }
}

/// Everything the console's routes share: users, tokens, sessions, lock-outs, the broker.
final class AdminState: Sendable {
    let configuration: AdminConfiguration
    let control: any BrokerControl
    let users: AdminUserStore
    let tokens: APITokenStore
    let sessions: WebSessionStore
    let throttle: LoginThrottle
    let totp = TOTPVerifier()
    let clock: any AdminClock
    let logger: Logger
    /// Password hashes are checked here, never on an event loop.
    let hashingPool: NIOThreadPool
    let directory: LDAPDirectoryAuthenticator?
    let history = StatsHistory()
    /// Checked for unknown user names, so they cost what a wrong password costs.
    let unmatchable = PasswordHash.unmatchable()
    private let boundPort = Atomic<Int>(0)

    init(configuration: AdminConfiguration, control: any BrokerControl, users: AdminUserStore, tokens: APITokenStore,
         clock: any AdminClock, logger: Logger, hashingPool: NIOThreadPool, directory: LDAPDirectoryAuthenticator?) {
        self.configuration = configuration
        self.control = control
        self.users = users
        self.tokens = tokens
        self.sessions = WebSessionStore(lifetime: configuration.sessionLifetime, idle: configuration.sessionIdleTimeout)
        self.throttle = LoginThrottle(policy: configuration.lockout)
        self.clock = clock
        self.logger = logger
        self.hashingPool = hashingPool
        self.directory = directory
    }

    var port: Int {
        let bound = boundPort.load(ordering: .relaxed)
        return bound != 0 ? bound : configuration.port
    }

    func bound(port: Int) { boundPort.store(port, ordering: .relaxed) }

    var audit: AuditLog { control.audit }

    /// Checks a password on the hashing pool.
    func verify(_ password: String, against hash: PasswordHash) async -> Bool {
        (try? await hashingPool.runIfActive { hash.matches(Array(password.utf8)) }) ?? false
    }

    func makeHash(_ password: String) async throws -> PasswordHash {
        try await hashingPool.runIfActive { try PasswordHash.make(password: Array(password.utf8)) }
    }

    func record(_ principal: AdminPrincipal, _ context: AdminRequestContext, _ action: AuditEvent.AdminAction.Action,
                target: String?, outcome: AuditEvent.AdminAction.Outcome, detail: String? = nil) {
        audit.record(.adminAction(.init(
            remoteIP: context.remoteIP, user: principal.name, role: principal.role.rawValue,
            via: principal.method == .session ? .session : .token, action: action, target: target, outcome: outcome, detail: detail)))
    }
}

/// The admin console: a Hummingbird application serving the REST API (`/api/v1`), the web UI,
/// and the monitoring routes (`/metrics`, `/healthz`, `/readyz`, `/bans`, `/sessions`), run as a
/// `Service` in the broker's service group.
public final class AdminServer: Service, Sendable {
    let state: AdminState
    let eventLoopGroup: any EventLoopGroup
    let tls: TLSConfiguration?
    private let bound = Mutex(BoundState())

    private struct BoundState {
        var port: Int?
        var finished = false
        var waiters: [CheckedContinuation<Int?, Never>] = []
    }

    /// Prepares everything that can fail (files, TLS material, LDAP settings) so that problems
    /// surface at startup. On first start this creates the `admin` user with a generated password
    /// and the bootstrap API token, writes each to a 0600 file in the data directory and prints
    /// only the files' paths.
    public init(configuration: AdminConfiguration, control: any BrokerControl, logger: Logger = Logger(label: "bastion.admin"),
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                hashingPool: NIOThreadPool = .singleton, clock: any AdminClock = SystemAdminClock(),
                announce: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        throws(AdminSetupError)
    {
        if configuration.scheme == .http, !configuration.isLoopback {
            throw AdminSetupError(key: "admin.listen", "plain http is accepted only on loopback; use https:// with admin.tls.cert and admin.tls.key")
        }
        do {
            try PKIFiles.makeDirectory(configuration.dataDirectory, mode: 0o700)
        } catch {
            throw AdminSetupError(key: "persistence.data_dir", "\(error)")
        }
        let users = try Self.loadUsers(configuration, logger: logger, announce: announce)
        let bootstrap = try Self.loadBootstrapToken(configuration, logger: logger, announce: announce)
        let tokens: APITokenStore
        do {
            tokens = try APITokenStore.load(path: configuration.tokensFile, bootstrapToken: bootstrap, logger: logger)
        } catch {
            throw AdminSetupError(key: "admin", error.description)
        }
        var directory: LDAPDirectoryAuthenticator?
        if let ldap = configuration.ldap {
            do {
                directory = try LDAPDirectoryAuthenticator(configuration: ldap.directory, group: eventLoopGroup, logger: logger)
            } catch {
                throw AdminSetupError(key: "admin.ldap.\(error.key)", error.message)
            }
        }
        self.tls = try Self.tlsConfiguration(configuration)
        if configuration.scheme == .http {
            logger.warning("admin console on plain http (loopback only); prefer https", metadata: ["url": "\(configuration.url())"])
        }
        self.state = AdminState(configuration: configuration, control: control, users: users, tokens: tokens, clock: clock,
                                logger: logger, hashingPool: hashingPool, directory: directory)
        self.eventLoopGroup = eventLoopGroup
    }

    private static func loadUsers(_ configuration: AdminConfiguration, logger: Logger,
                                  announce: (String) -> Void) throws(AdminSetupError) -> AdminUserStore {
        do {
            if let existing = try AdminUserStore.load(path: configuration.usersFile, logger: logger) { return existing }
        } catch {
            throw AdminSetupError(key: "admin.users_file", error.description)
        }
        let password = PrivateFiles.randomPassword()
        let store = AdminUserStore(path: configuration.usersFile, users: [])
        do {
            let hash = try PasswordHash.make(password: Array(password.utf8))
            try PrivateFiles.write(password + "\n", to: configuration.initialPasswordFile)
            try store.put(.init(name: "admin", role: .admin, hash: hash, totpSecret: nil))
        } catch {
            throw AdminSetupError(key: "admin.users_file", "cannot create the first admin user: \(error)")
        }
        announce("Bastion admin console: created user 'admin'; its password is in \(configuration.initialPasswordFile) (mode 0600). "
            + "Log in at \(configuration.url()) and enrol TOTP; the file is deleted then.")
        logger.notice("created the first admin console user", metadata: ["user": "admin", "password_file": "\(configuration.initialPasswordFile)"])
        return store
    }

    private static func loadBootstrapToken(_ configuration: AdminConfiguration, logger: Logger,
                                           announce: (String) -> Void) throws(AdminSetupError) -> String {
        let path = configuration.bootstrapTokenFile
        let text: String
        if configuration.bootstrapTokenConfigured {
            do {
                text = try PrivateFiles.readConfigured(path)
            } catch {
                throw AdminSetupError(key: "admin.token_file", error.description)
            }
        } else {
            do {
                if let existing = try PrivateFiles.read(path, logger: logger) {
                    text = existing
                } else {
                    text = PrivateFiles.randomToken(bytes: 32)
                    try PrivateFiles.write(text + "\n", to: path)
                    announce("Bastion admin API: the bearer token (role admin) is in \(path) (mode 0600); "
                        + "`bastion ban --token-file \(path)` and scripts use it.")
                }
            } catch {
                throw AdminSetupError(key: "admin.token_file", error.description)
            }
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16, !token.contains(where: \.isWhitespace) else {
            throw AdminSetupError(key: "admin.token_file", "the token in \(path) is shorter than 16 characters or contains spaces; "
                + "fix: write a random token, e.g. `openssl rand -hex 32 > \(path)`")
        }
        return token
    }

    private static func tlsConfiguration(_ configuration: AdminConfiguration) throws(AdminSetupError) -> TLSConfiguration? {
        guard configuration.scheme == .https else { return nil }
        var certFile = configuration.certificateFile
        var keyFile = configuration.keyFile
        if certFile == nil || keyFile == nil {
            guard configuration.isLoopback else {
                throw AdminSetupError(key: "admin.tls", "an admin listener off loopback needs a real certificate; set admin.tls.cert and admin.tls.key")
            }
            do {
                let files = try DevelopmentPKI.ensure(dataDir: configuration.dataDirectory)
                certFile = files.certFile
                keyFile = files.keyFile
            } catch {
                throw AdminSetupError(key: "persistence.data_dir", "cannot create the development CA: \(error)")
            }
        }
        guard let certFile, let keyFile else { return nil }
        do {
            try PKIFiles.checkKeyPermissions(keyFile, what: "admin TLS key")
            let chain = try NIOSSLCertificate.fromPEMFile(certFile).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw AdminSetupError(key: "admin.tls.cert", "\(certFile) holds no certificate") }
            let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            return tls
        } catch let error as AdminSetupError {
            throw error
        } catch {
            throw AdminSetupError(key: "admin.tls", "\(error)")
        }
    }

    /// The bound port once listening (useful with port 0); nil if the server stopped first.
    public func waitUntilBound() async -> Int? {
        await withCheckedContinuation { continuation in
            let ready: Int?? = bound.withLock { state in
                if let port = state.port { return .some(port) }
                if state.finished { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func finish(port: Int?) {
        let waiters = bound.withLock { state in
            if let port { state.port = port } else { state.finished = true }
            let w = state.waiters
            state.waiters = []
            return w
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    /// The routes, for tests that drive them without a socket.
    public func router() -> Router<AdminRequestContext> { AdminRoutes.router(state) }

    public func run() async throws {
        let configuration = state.configuration
        let server: HTTPServerBuilder
        if let tls {
            server = try .tls(.http1(configuration: .init(idleTimeout: .seconds(30))), tlsConfiguration: tls)
        } else {
            server = .http1(configuration: .init(idleTimeout: .seconds(30)))
        }
        let state = self.state
        let app = Application(
            router: AdminRoutes.router(state),
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? configuration.port
                state.bound(port: port)
                state.logger.notice("admin console started", metadata: ["url": "\(configuration.url(port: port))"])
                finish(port: port)
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: state.logger)
        defer { finish(port: nil) }
        // Samples for the overview's charts, every 10 s.
        let sampler = Task {
            while !Task.isCancelled {
                state.history.add(state.control.stats(), at: state.clock.now())
                try? await Task.sleep(for: .seconds(10))
            }
        }
        defer { sampler.cancel() }
        try await app.run()
    }
}
