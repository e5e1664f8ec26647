import BastionAdmin
import BastionBridge
import BastionCore
import BastionIdentity
import BastionSecurity
import BastionStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The broker as a `Service`: restores durable state, binds the listeners, runs until graceful
/// shutdown, then stops accepting, tells 5.0 clients why (0x8B), closes every connection and
/// releases the loops.
public final class BrokerService: Service {
    let settings: BrokerSettings
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let broker: Broker
    let authPool: NIOThreadPool
    /// `authPool` shared fairly between client addresses.
    let hashing: FairBlockingPool
    let protection: AbuseProtection
    let metrics: BrokerMetrics
    /// The configuration as given; reloads re-read its files.
    let options: ServeOptions
    /// The admin console (API, web UI, metrics, health, bans), if configured; run it beside this service.
    public let admin: AdminServer?
    /// The access policy in force, for the console's ACL checker.
    let policySnapshot: PolicySnapshot
    /// TLS material per listener (nil for plaintext listeners), reloaded on SIGHUP.
    let tlsHolders: [TLSContextHolder?]
    /// The identity backends in force (replaced on reload) and how to build them.
    private let identity: Mutex<IdentityServices>
    private let identityContext: IdentityServices.Context
    /// SCRAM enhanced authentication; its stores follow reloads.
    private let scram: ScramAuthenticator
    /// What the durable store held at startup, applied in `run` before the listeners bind.
    private let restored: (state: StoredBrokerState, at: WallClock)?
    private let listening = Flag()
    /// Outbound links to remote brokers (`bridges`).
    let bridges: BridgeService

    /// Raised (and thrown from `run`) when a listener cannot be bound: a runtime failure, exit 1.
    public struct BindFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Loads everything a configuration can get wrong (password file, ACL, audit log, data
    /// directory) so that errors surface before anything binds (exit 2).
    public init(settings: BrokerSettings, options: ServeOptions, logger: Logger) throws(ConfigError) {
        var settings = settings
        // Identity backends are the operator's choice of who may log in: no generated admin.
        let hasBackends = !(settings.auth.backends ?? []).isEmpty
        if settings.auth.password_file == nil && !hasBackends && !settings.listeners.contains(where: \.allowAnonymous) {
            settings.auth.password_file = try DefaultCredentials.ensure(dataDir: settings.dataDir, logger: logger)
        }
        let material = try SecurityMaterial.load(auth: settings.auth, configPath: settings.configPath, generation: 0)
        Self.report(material, logger: logger)
        self.tlsHolders = try Self.loadTLS(settings: settings, options: options, logger: logger)
        let store = try Self.openStore(settings.persistence, dataDir: settings.dataDir, logger: logger)
        do {
            let now = StoreMapping.wallClock()
            self.restored = (try store.load(now: now), now)
        } catch {
            throw ConfigError(key: "persistence.data_dir", "\(error)", fix: "check the data directory \(settings.dataDir), or move a damaged database aside")
        }
        let audit: AuditLog
        do {
            audit = try AuditLog(settings.protection.audit)
        } catch {
            throw ConfigError(key: "audit.path", "\(error)", fix: "make the audit log's directory writable")
        }
        MetricsBootstrap.bootstrapOnce()
        let metrics = BrokerMetrics()
        let brokerBox = BrokerBox()
        let alertHistory = AlertHistory()
        let protection = AbuseProtection(settings: settings.protection, audit: audit, metrics: metrics) { alert, payload in
            alertHistory.add(alert)
            brokerBox.publishAlert(payload)
        }
        let policySnapshot = PolicySnapshot(policy: material.topicPolicy, warnings: material.warnings)
        self.policySnapshot = policySnapshot
        self.settings = settings
        self.options = options
        self.logger = logger
        self.metrics = metrics
        self.protection = protection
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.authPool = NIOThreadPool(numberOfThreads: max(1, System.coreCount / 2))
        self.authPool.start()
        let hashing = FairBlockingPool(pool: authPool)
        self.hashing = hashing
        let alerts = BackendAlerts(logger: logger) { backend, _ in protection.backendUnavailable(backend) }
        let identityContext = IdentityServices.Context(
            runner: BlockingRunner(pool: hashing, eventLoop: group.next()), group: group, logger: logger, alerts: alerts,
            configPath: settings.configPath)
        let services: IdentityServices
        do {
            services = try IdentityServices.build(specs: material.backends, passwordFile: material.passwordFile, context: identityContext)
        } catch {
            try? authPool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            throw error
        }
        self.identityContext = identityContext
        self.identity = Mutex(services)
        let scram = ScramAuthenticator(services.scram)
        self.scram = scram
        let broker = Broker(
            group: group, limits: settings.limits, logger: logger,
            authenticator: services.authenticator(
                material: material, auth: settings.auth, pool: hashing, maximumUsernameLength: settings.limits.maximumUsernameLength),
            authorization: material.authorization(logger: logger),
            enhancedAuthenticator: scram,
            disconnectOnDeniedPublish: settings.auth.disconnect_on_denied_publish ?? false,
            store: store, protection: protection, connectTimeout: .milliseconds(Int64(settings.connectTimeout * 1000)),
            sessionSharing: material.sessionSharing,
            listenerConnectPacketSizes: settings.listeners.map { $0.limits?.max_connect_packet_size })
        self.broker = broker
        self.bridges = try BridgeService(settings: settings.bridges, broker: broker, logger: logger)
        brokerBox.set(broker)
        protection.observeOperatorBans { [weak broker] entry in broker?.disconnectBanned(entry) }
        let reloadBox = ReloadBox()
        if let adminSettings = settings.protection.admin {
            let listening = self.listening
            let control = BrokerControlAdapter(
                broker: broker, metrics: metrics, protection: protection, policy: policySnapshot, alertHistory: alertHistory,
                audit: audit, auditPath: settings.protection.audit.path, tlsHolders: tlsHolders,
                listenerNames: settings.listeners.map(\.url.description), pool: authPool,
                ready: { listening.value && broker.storeHealthy }, reload: { reloadBox.run() })
            do {
                admin = try AdminServer(
                    configuration: adminSettings.configuration(dataDirectory: settings.dataDir), control: control,
                    logger: logger, eventLoopGroup: group, hashingPool: authPool)
            } catch {
                throw ConfigError(file: settings.configPath, key: error.key, error.description)
            }
        } else {
            admin = nil
        }
        reloadBox.set { [self] in self.reload() }
    }

    /// Opens the SQLite store in the data directory (strict durability unless configured relaxed).
    private static func openStore(_ config: PersistenceConfig, dataDir: String, logger: Logger) throws(ConfigError) -> SQLiteStore {
        let text = config.durability ?? SQLiteStore.Durability.strict.rawValue
        guard let durability = SQLiteStore.Durability(rawValue: text) else {
            throw ConfigError(key: "persistence.durability", "unknown durability '\(text)'", fix: "use strict or relaxed")
        }
        let interval = config.fsync_interval_ms ?? 1000
        guard interval > 0 else {
            throw ConfigError(key: "persistence.fsync_interval_ms", "\(interval) is out of range", fix: "use a number of milliseconds above 0")
        }
        do {
            return try SQLiteStore(
                options: .init(directory: dataDir, durability: durability, fsyncInterval: .milliseconds(interval)), logger: logger)
        } catch {
            throw ConfigError(key: "persistence.data_dir", "\(error)", fix: "make \(dataDir) a writable directory that no other broker uses")
        }
    }

    /// Resolves and loads each TLS listener's certificate, key, CA and CRLs. Loopback listeners
    /// without configured material use the development CA generated in the data directory.
    private static func loadTLS(settings: BrokerSettings, options: ServeOptions, logger: Logger) throws(ConfigError) -> [TLSContextHolder?] {
        var holders: [TLSContextHolder?] = []
        var development: DevelopmentPKI.Files?
        for (i, listener) in settings.listeners.enumerated() {
            guard listener.url.scheme.isTLS else {
                holders.append(nil)
                continue
            }
            let keyPath = options.listen.isEmpty && settings.configPath != nil ? "listeners[\(i)].tls" : "tls"
            var fallback: DevelopmentPKI.Files?
            let configured = options.tlsCert != nil || listener.tls?.cert != nil
            if !configured && listener.url.isLoopback {
                if development == nil {
                    do {
                        development = try DevelopmentPKI.ensure(dataDir: settings.dataDir)
                    } catch {
                        throw ConfigError(key: "persistence.data_dir", "cannot create the development CA: \(error)")
                    }
                    if let files = development {
                        logger.notice("development CA for TLS listeners on loopback", metadata: ["ca_file": "\(files.caFile)"])
                        FileHandle.standardError.write(Data("Bastion TLS uses the development CA \(files.caFile) (e.g. mosquitto_pub --cafile \(files.caFile) -p \(listener.url.port) ...)\n".utf8))
                    }
                }
                fallback = development
            }
            do {
                let tlsSettings = try TLSServerSettings.resolve(
                    listener.tls,
                    overrides: .init(
                        certificateFile: options.tlsCert, keyFile: options.tlsKey, clientCAFile: options.tlsCA,
                        crlFiles: options.tlsCRL.map { [$0] }, requireCertificate: options.requireCertificate ? true : nil),
                    keyPath: keyPath, fallback: fallback)
                holders.append(try TLSContextHolder(name: listener.url.description, settings: tlsSettings, logger: logger))
            } catch let error as TLSSettingsError {
                throw ConfigError(file: settings.configPath, key: error.key, error.message)
            } catch {
                throw ConfigError(key: keyPath, "\(error)")
            }
        }
        return holders
    }

    private static func report(_ material: SecurityMaterial, logger: Logger) {
        if material.topicPolicy == nil {
            logger.warning("no ACL configured: every authenticated client may publish and subscribe to all topics except $SYS")
        }
        for warning in material.warnings {
            logger.warning("ACL lint: \(warning)")
        }
    }

    public func run() async throws {
        // Trap SIGHUP before anything binds, so an early reload request cannot end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        if let restored {
            let summary = try await StateRestore.restore(broker, from: restored.state, loadedAt: restored.at)
            logger.notice("state restored", metadata: [
                "sessions": "\(summary.sessions)", "messages": "\(summary.messages)", "retained": "\(summary.retained)",
            ])
        }
        // Bridges attach their sessions before any client can connect.
        await bridges.start()
        var channels: [any Channel] = []
        for (index, listener) in settings.listeners.enumerated() {
            let binder = ListenerBinder(
                broker: broker, settings: listener, index: index, tls: tlsHolders[index],
                logger: logger)
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
        listening.set(true)
        protection.started(version: Broker.version, listeners: settings.listeners.map(\.url.description), configPath: settings.configPath)

        let housekeeping = startHousekeeping()
        let probes = EventLoopLatencyProbe.start(group: group, metrics: metrics)
        logger.notice("bastion started", metadata: ["event_loops": "\(System.coreCount)"])

        let reloads = Task {
            for await _ in hangups { self.reload() }
        }
        try? await gracefulShutdown()
        reloads.cancel()

        logger.notice("shutting down")
        listening.set(false)
        for task in housekeeping { task.cancel() }
        for probe in probes { probe.cancel() }
        await bridges.stop()
        for channel in channels { try? await channel.close() }
        try? await broker.forEachConnection { $0.shutdown() }.get()
        // Give the DISCONNECT packets a moment to leave before the loops stop.
        try? await Task.sleep(for: .milliseconds(100))
        await identity.withLock { $0 }.chain?.shutdown()
        await protection.shutdown(cause: .signal, uptimeSeconds: broker.snapshot().uptimeSeconds)
        try? await group.shutdownGracefully()
        try? await authPool.shutdownGracefully()
        broker.store?.close()
        logger.notice("bastion stopped")
    }

    /// Session expiry and delayed wills (4/s), limit and ban sweeps (1/s), `$SYS` topics (every 10 s).
    private func startHousekeeping() -> [RepeatedTask] {
        let loop = group.next()
        let broker = self.broker
        let protection = self.protection
        let reaper = loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            broker.reap(on: loop)
        }
        let sweeper = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            protection.sweep()
        }
        let sys = NIOLoopBoundBox.makeBoxSendingValue(SysTopicPublisher(), eventLoop: loop)
        let sparkplugSys = NIOLoopBoundBox.makeBoxSendingValue(SparkplugSysTopics(), eventLoop: loop)
        let sysTask = loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .seconds(10)) { _ in
            let messages = sys.value.update(broker.snapshot(), now: protection.now())
                + sparkplugSys.value.update(broker.sparkplug.document())
            for message in messages {
                broker.publishSys(topic: message.topic, payload: message.payload, retain: true, on: loop)
            }
        }
        var tasks = [reaper, sweeper, sysTask]
        if !bridges.links.isEmpty {
            let bridges = self.bridges
            let metrics = self.metrics
            let bridgeSys = NIOLoopBoundBox.makeBoxSendingValue(BridgeSysTopics(), eventLoop: loop)
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .seconds(2)) { _ in
                bridges.snapshots(on: loop).whenSuccess { snapshots in
                    for s in snapshots {
                        metrics.observeBridge(name: s.name, connected: s.connected, queuedMessages: s.queuedMessages, queuedBytes: s.queuedBytes,
                                              forwarded: s.forwarded, received: s.received, dropped: s.dropped, oldestQueuedAge: s.oldestQueuedAge)
                    }
                    for message in bridgeSys.value.update(snapshots) {
                        broker.publishSys(topic: message.topic, payload: message.payload, retain: true, on: loop)
                    }
                }
            })
        }
        // Connection deadlines: one sweep per loop every 250 ms instead of a timer per connection.
        let deadlines = group.makeIterator().map { connectionLoop in
            connectionLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
                broker.worker(on: connectionLoop).sweepConnections()
            }
        }
        return tasks + deadlines
    }

    /// SIGHUP (and the console's reload): re-read the password file and the ACL (and the
    /// configuration file's auth and limits sections). A file that fails to load is rejected with
    /// its location and the old policy stays. Returns why it was rejected, nil on success.
    @discardableResult
    func reload() -> String? {
        for holder in tlsHolders.compactMap({ $0 }) {
            do {
                try holder.reload()
                logger.notice("TLS material reloaded", metadata: ["listener": "\(holder.name)"])
            } catch {
                protection.reloadRejected(path: holder.name, error: "\(error)")
            }
        }
        do {
            var auth = settings.auth
            var protectionSettings = settings.protection
            if let path = settings.configPath {
                let file = try ConfigLoader.load(path: path)
                auth = file.auth ?? AuthConfig()
                // Flags win over the file, as at startup; the startup password file (possibly the
                // generated default) stays when neither names one.
                if let p = options.passwordFile { auth.password_file = p }
                if auth.password_file == nil { auth.password_file = settings.auth.password_file }
                if let p = options.aclFile { auth.acl_file = p }
                protectionSettings = try ProtectionSettings.resolve(file: file, options: options)
            }
            let material = try SecurityMaterial.load(auth: auth, configPath: settings.configPath, generation: UInt64(broker.securityGeneration + 1))
            Self.report(material, logger: logger)
            // New backends (keys and files re-read, an empty decision cache); the old ones
            // close once logins in flight have had their time.
            let services = try IdentityServices.build(specs: material.backends, passwordFile: material.passwordFile, context: identityContext)
            broker.updateSecurity(
                authenticator: services.authenticator(
                    material: material, auth: auth, pool: hashing, maximumUsernameLength: settings.limits.maximumUsernameLength),
                authorization: material.authorization(logger: logger),
                sessionSharing: material.sessionSharing)
            scram.update(services.scram)
            let previous = identity.withLock { current in
                defer { current = services }
                return current
            }
            previous.retire(after: .seconds(Int64(settings.connectTimeout) + 5))
            protection.reload(protectionSettings, path: settings.configPath)
            policySnapshot.set(policy: material.topicPolicy, warnings: material.warnings)
            logger.notice("configuration reloaded", metadata: ["users": "\(material.passwordFile?.usernames.count ?? 0)",
                                                                 "acl_rules": "\(material.policy?.ruleCount ?? 0)"])
        } catch {
            protection.reloadRejected(path: settings.configPath, error: "\(error)")
            logger.error("configuration reload rejected; the previous policy stays in force: \(error)")
            return "\(error)"
        }
        return nil
    }
}

/// Lets alerts raised by abuse protection (created before the broker) reach the broker.
private final class BrokerBox: Sendable {
    private let broker = Mutex<Broker?>(nil)

    func set(_ broker: Broker) { self.broker.withLock { $0 = broker } }

    func publishAlert(_ payload: String) {
        guard let broker = broker.withLock({ $0 }) else { return }
        // Always a task of its own: an alert is raised from inside a connection's publish path,
        // and routing it there would re-enter the loop worker mid-burst.
        let loop = broker.group.next()
        loop.execute { broker.publishSys(topic: SysTopics.alertsTopic, payload: payload, retain: false, on: loop) }
    }
}

/// Lets the console ask for a reload of a service that is created after it.
private final class ReloadBox: Sendable {
    private let action = Mutex<(@Sendable () -> String?)?>(nil)

    func set(_ reload: @escaping @Sendable () -> String?) { action.withLock { $0 = reload } }

    /// Why the reload was rejected, nil when it was applied.
    func run() -> String? {
        guard let reload = action.withLock({ $0 }) else { return "the broker is still starting" }
        return reload()
    }
}

/// A boolean shared with closures (readiness).
private final class Flag: Sendable {
    private let atomic = Atomic<Bool>(false)
    var value: Bool { atomic.load(ordering: .relaxed) }
    func set(_ value: Bool) { atomic.store(value, ordering: .relaxed) }
}
