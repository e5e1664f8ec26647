import BastionCore
import BastionIdentity
import BastionLDAP
import BastionSecurity
import Logging
import NIOCore

/// The live identity chain and SCRAM stores a configuration describes: backends with their
/// pools and clients. Built at startup and on every reload (a reload's chain replaces the old
/// one, whose connections close once logins in flight are done).
struct IdentityServices: Sendable {
    struct Context: Sendable {
        var runner: BlockingRunner
        var group: any EventLoopGroup
        var logger: Logger
        var alerts: BackendAlerts
        var configPath: String?
    }

    /// nil when `auth.backends` is not configured (the password authenticator decides).
    let chain: IdentityChain?
    let scram: ScramAuthenticator.Configuration

    static func build(specs: [BackendSpec], passwordFile: PasswordFile?, context: Context) throws(ConfigError) -> IdentityServices {
        var members: [IdentityChain.Member] = []
        var sources: [any ScramCredentialSource] = []
        var fileBackend: PasswordFileBackend?
        var built: [any IdentityBackend] = []
        func fail(_ spec: BackendSpec, _ key: String, _ message: String) -> ConfigError {
            // Backends already started for this configuration are released.
            let started = built
            Task { for backend in started { await backend.shutdown() } }
            return ConfigError(file: context.configPath, key: key.hasPrefix("auth.") ? key : "\(spec.key).\(key)", message)
        }
        for spec in specs {
            let backend: any IdentityBackend
            switch spec.kind {
            case .file:
                guard let passwordFile else { throw fail(spec, "type", "{type: file} needs auth.password_file") }
                let file = PasswordFileBackend(name: spec.name, file: passwordFile, runner: context.runner)
                fileBackend = file
                sources.append(file)
                backend = file
            case .jwt(let settings):
                do {
                    backend = try JWTBackend(name: spec.name, settings: settings, keyPrefix: spec.key)
                } catch {
                    throw fail(spec, error.key, error.message)
                }
            case .postgres(let settings):
                do {
                    let postgres = try PostgresBackend(
                        name: spec.name, settings: settings, runner: context.runner, eventLoopGroup: context.group,
                        logger: context.logger)
                    if !settings.tls, !PostgresSettings.isLoopback(settings.host) {
                        context.logger.warning("TLS to PostgreSQL is disabled: passwords hashes and queries cross the network in clear text",
                                               metadata: ["backend": "\(spec.name)"])
                    }
                    sources.append(postgres)
                    backend = postgres
                } catch {
                    throw fail(spec, error.key, error.message)
                }
            case .ldap(let configuration, let roleMap):
                do {
                    let directory = try LDAPDirectoryAuthenticator(configuration: configuration, group: context.group, logger: context.logger)
                    backend = LDAPBackend(name: spec.name, directory: directory, roleMap: roleMap)
                } catch {
                    throw fail(spec, error.key, error.message)
                }
            case .http(let settings):
                do {
                    backend = try WebhookBackend(name: spec.name, settings: settings, eventLoopGroup: context.group, logger: context.logger)
                } catch {
                    throw fail(spec, error.key, error.message)
                }
            }
            built.append(backend)
            members.append(IdentityChain.Member(backend, limits: spec.limits))
        }
        var chain: IdentityChain?
        if !members.isEmpty {
            var cost: (@Sendable (AuthenticationRequest) async -> Void)?
            if let file = fileBackend {
                cost = { request in await file.unknownUserCost(request) }
            }
            chain = IdentityChain(members, alerts: context.alerts, unknownUserCost: cost)
        } else if let passwordFile {
            // No backends: the password file alone holds SCRAM keys.
            sources.append(PasswordFileBackend(name: "file", file: passwordFile, runner: context.runner))
        }
        var iterations: [ScramAlgorithm: Int] = [:]
        for algorithm in ScramAlgorithm.allCases {
            iterations[algorithm] = passwordFile?.typicalScramIterations(algorithm) ?? ScramStoredKeys.recommendedIterations
        }
        let scram = ScramAuthenticator.Configuration(sources: sources, fakeIterations: iterations, chain: chain, alerts: context.alerts)
        return IdentityServices(chain: chain, scram: scram)
    }

    /// The CONNECT authenticator: the chain with its decision cache, or the password file alone.
    func authenticator(material: SecurityMaterial, auth: AuthConfig, pool: any BlockingWorkPool, maximumUsernameLength: Int) -> any Authenticator {
        guard let chain else {
            return PasswordAuthenticator(passwordFile: material.passwordFile, policy: material.policy, pool: pool,
                                         maximumUsernameLength: maximumUsernameLength)
        }
        let ttl = auth.cache_ttl ?? 30
        let cache = ttl > 0 ? DecisionCache(ttl: .milliseconds(Int64(ttl * 1000)), maximumEntries: auth.cache_size ?? 10_000) : nil
        return IdentityChainAuthenticator(chain: chain, policy: material.policy, cache: cache, maximumUsernameLength: maximumUsernameLength)
    }

    /// Releases the backends after `delay`, so logins still running on them can finish.
    func retire(after delay: Duration) {
        guard let chain else { return }
        Task {
            try? await Task.sleep(for: delay)
            await chain.shutdown()
        }
    }
}
