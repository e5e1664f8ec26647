import BastionCore
import BastionSecurity
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The broker as a `Service`: binds the listeners, runs until graceful shutdown, then stops
/// accepting, tells 5.0 clients why (0x8B), closes every connection and releases the loops.
public final class BrokerService: Service {
    let settings: BrokerSettings
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let broker: Broker

    /// Raised (and thrown from `run`) when a listener cannot be bound: a runtime failure, exit 1.
    public struct BindFailure: Error, CustomStringConvertible {
        public var description: String
    }

    let authPool: NIOThreadPool
    /// The configuration as resolved at startup; reloads re-read its files.
    let options: ServeOptions

    /// Loads the security material (password file, ACL) so that configuration errors surface
    /// before anything binds (exit 2).
    public init(settings: BrokerSettings, options: ServeOptions, logger: Logger) throws(ConfigError) {
        var settings = settings
        if settings.auth.password_file == nil && !settings.listeners.contains(where: \.allowAnonymous) {
            settings.auth.password_file = try DefaultCredentials.ensure(dataDir: settings.dataDir, logger: logger)
        }
        let material = try SecurityMaterial.load(auth: settings.auth, configPath: settings.configPath, generation: 0)
        Self.report(material, logger: logger)
        self.settings = settings
        self.options = options
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.authPool = NIOThreadPool(numberOfThreads: max(1, System.coreCount / 2))
        self.authPool.start()
        self.broker = Broker(
            group: group, limits: settings.limits, logger: logger,
            authenticator: PasswordAuthenticator(passwordFile: material.passwordFile, policy: material.policy, pool: authPool),
            authorization: PolicyAuthorization(policy: material.policy, logger: logger),
            disconnectOnDeniedPublish: settings.auth.disconnect_on_denied_publish ?? false)
    }

    private static func report(_ material: SecurityMaterial, logger: Logger) {
        if material.policy == nil {
            logger.warning("no ACL configured: every authenticated client may publish and subscribe to all topics except $SYS")
        }
        for warning in material.warnings {
            logger.warning("ACL lint: \(warning)")
        }
    }

    /// SIGHUP: re-read the password file and the ACL (and the configuration file's auth section).
    /// A file that fails to load is rejected with its location and the old policy stays.
    func reload() {
        do {
            var auth = settings.auth
            if let path = settings.configPath {
                let file = try ConfigLoader.load(path: path)
                auth = file.auth ?? AuthConfig()
                if let p = options.passwordFile ?? settings.auth.password_file, auth.password_file == nil { auth.password_file = p }
                if let p = options.aclFile { auth.acl_file = p }
            }
            let material = try SecurityMaterial.load(auth: auth, configPath: settings.configPath, generation: UInt64(broker.securityGeneration + 1))
            Self.report(material, logger: logger)
            broker.updateSecurity(
                authenticator: PasswordAuthenticator(passwordFile: material.passwordFile, policy: material.policy, pool: authPool),
                authorization: PolicyAuthorization(policy: material.policy, logger: logger))
            logger.notice("configuration reloaded", metadata: ["users": "\(material.passwordFile?.usernames.count ?? 0)",
                                                                 "acl_rules": "\(material.policy?.ruleCount ?? 0)"])
        } catch {
            logger.error("configuration reload rejected; the previous policy stays in force: \(error)")
        }
    }

    public func run() async throws {
        if let store = broker.store {
            let summary = try await StateRestore.restore(broker, from: store)
            logger.notice("state restored", metadata: [
                "sessions": "\(summary.sessions)", "messages": "\(summary.messages)", "retained": "\(summary.retained)",
            ])
        }
        var channels: [any Channel] = []
        for listener in settings.listeners {
            let binder = ListenerBinder(
                broker: broker, settings: listener, connectTimeout: .milliseconds(Int64(settings.connectTimeout * 1000)), logger: logger)
            do {
                channels.append(try await binder.bind(group: group))
            } catch {
                for channel in channels { try? await channel.close() }
                try? await group.shutdownGracefully()
                throw BindFailure(description: "cannot listen on \(listener.url): \(error)")
            }
            logger.notice("listening", metadata: [
                "listener": "\(listener.url)", "allow_anonymous": "\(listener.allowAnonymous)",
            ])
        }
        let reapLoop = group.next()
        let reaper = reapLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { [broker] _ in
            broker.reap(on: reapLoop)
        }
        logger.notice("bastion started", metadata: ["event_loops": "\(System.coreCount)"])

        let reloads = Task {
            for await _ in await UnixSignalsSequence(trapping: .sighup) { self.reload() }
        }
        try? await gracefulShutdown()
        reloads.cancel()

        logger.notice("shutting down")
        reaper.cancel()
        for channel in channels { try? await channel.close() }
        try? await broker.forEachConnection { $0.shutdown() }.get()
        // Give the DISCONNECT packets a moment to leave before the loops stop.
        try? await Task.sleep(for: .milliseconds(100))
        try? await group.shutdownGracefully()
        try? await authPool.shutdownGracefully()
        broker.store?.close()
        logger.notice("bastion stopped")
    }
}
