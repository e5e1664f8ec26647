import ArgumentParser
import BastionServer
import Foundation
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the broker.",
        discussion: """
            With no options the broker listens on 127.0.0.1:1883 only. Options override the configuration file.
            Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on bad usage or configuration.
            """)

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Listener URL (repeatable): mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH.")
    var listen: [String] = []

    @Option(name: .customLong("data-dir"), help: "Directory for persistent state (default ./data).")
    var dataDir: String?

    @Flag(name: .customLong("allow-anonymous"), help: "Accept clients without credentials (loopback listeners only).")
    var allowAnonymous = false

    @Option(name: .customLong("password-file"), help: "Mosquitto-format password file.")
    var passwordFile: String?

    @Option(name: .customLong("acl-file"), help: "Mosquitto-format ACL file.")
    var aclFile: String?

    @Option(name: .customLong("tls-cert"), help: "PEM server certificate chain for TLS listeners.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for TLS listeners.")
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: "PEM CA bundle trusted for client certificates.")
    var tlsCA: String?

    @Option(name: .customLong("tls-crl"), help: "Certificate revocation list (PEM or DER).")
    var tlsCRL: String?

    @Flag(name: .customLong("require-certificate"), help: "Require a client certificate (mutual TLS).")
    var requireCertificate = false

    @Option(name: .customLong("audit-log"), help: "JSON Lines audit log file.")
    var auditLog: String?

    @Option(name: .customLong("admin-listen"), help: "Admin console listener, e.g. https://127.0.0.1:9443 (http:// only on loopback).")
    var adminListen: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    func run() async throws {
        var options = ServeOptions()
        options.configPath = config
        options.listen = listen
        options.dataDir = dataDir
        options.allowAnonymous = allowAnonymous
        options.passwordFile = passwordFile
        options.aclFile = aclFile
        options.tlsCert = tlsCert
        options.tlsKey = tlsKey
        options.tlsCA = tlsCA
        options.tlsCRL = tlsCRL
        options.requireCertificate = requireCertificate
        options.auditLog = auditLog
        options.adminListen = adminListen
        options.logLevel = logLevel

        let settings: BrokerSettings
        do {
            settings = try BrokerSettings.resolve(options: options)
        } catch {
            FileHandle.standardError.write(Data("bastion: configuration error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "bastion")
        let service: BrokerService
        do {
            service = try BrokerService(settings: settings, options: options, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("bastion: configuration error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var services: [any Service] = [service]
        if let admin = service.admin { services.append(admin) }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }
}
