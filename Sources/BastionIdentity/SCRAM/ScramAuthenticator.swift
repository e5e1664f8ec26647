import BastionCore
import BastionSecurity
import Crypto
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// MQTT 5.0 enhanced authentication with SCRAM-SHA-256 and SCRAM-SHA-512 against stored keys
/// in the password file (`$scram-sha-256$…` lines) and `postgres` backends, asked in chain
/// order. One instance lives as long as the broker; a reload installs a new `Configuration`.
///
/// Failures (see docs/auth-backends.md): 0x8C an unsupported method (refused before an
/// exchange starts), 0x82 SCRAM data that is malformed or out of order, 0x87 a proof that does
/// not verify (wrong password and unknown user alike) or a user other than the CONNECT's or
/// the session's, 0x89 a credential store that is unavailable or busy.
public final class ScramAuthenticator: EnhancedAuthenticator {
    public struct Configuration: Sendable {
        let sources: [any ScramCredentialSource]
        /// What an unknown user's made-up keys use, so they look like a real user's.
        let fakeIterations: [ScramAlgorithm: Int]
        let chain: IdentityChain?
        let alerts: BackendAlerts

        public init(sources: [any ScramCredentialSource], fakeIterations: [ScramAlgorithm: Int] = [:], chain: IdentityChain? = nil,
                    alerts: BackendAlerts = .silent()) {
            self.sources = sources
            self.fakeIterations = fakeIterations
            self.chain = chain
            self.alerts = alerts
        }

        enum Lookup: Sendable {
            case found(ScramStoredKeys, any ScramCredentialSource)
            case unknown
            case unavailable
        }

        /// The first store that knows the user decides.
        func lookUp(username: String, algorithm: ScramAlgorithm) async -> Lookup {
            for source in sources {
                let result = await limited(source) { await source.scramLookup(username: username, algorithm: algorithm) }
                switch result {
                case .done(.found(let keys)): return .found(keys, source)
                case .done(.unknown): continue
                case .done(.unusable): return .unknown
                case .done(.unavailable(let reason)):
                    alerts.unavailable(source.name, reason: reason)
                    return .unavailable
                case .busy:
                    alerts.busy(source.name)
                    return .unavailable
                case .timedOut:
                    alerts.unavailable(source.name, reason: "no answer in time")
                    return .unavailable
                }
            }
            return .unknown
        }

        func grant(from source: any ScramCredentialSource, username: String, clientID: String) async -> BackendDecision {
            switch await limited(source, { await source.scramGrant(username: username, clientID: clientID) }) {
            case .done(.unavailable(let reason)):
                alerts.unavailable(source.name, reason: reason)
                return .unavailable(reason)
            case .done(let decision):
                return decision
            case .busy:
                alerts.busy(source.name)
                return .unavailable("busy")
            case .timedOut:
                alerts.unavailable(source.name, reason: "no answer in time")
                return .unavailable("no answer in time")
            }
        }

        /// Runs a store call under the chain's limits for that backend, when it has them.
        private func limited<T: Sendable>(_ source: any ScramCredentialSource, _ work: @escaping @Sendable () async -> T) async -> IdentityChain.Limited<T> {
            guard let chain else { return .done(await work()) }
            return await chain.limited(source.name, work)
        }

        /// Keys for a user no store knows: the salt is derived from the user name (the same on
        /// every attempt, as a real user's), the iterations are the stores' usual ones.
        func fakeKeys(username: String, algorithm: ScramAlgorithm) -> ScramStoredKeys {
            let salt = Array(HMAC<SHA256>.authenticationCode(for: Array("\(algorithm.mechanism)\u{0}\(username)".utf8), using: ScramAuthenticator.fakeSaltKey))
            return ScramStoredKeys(
                algorithm: algorithm, iterations: fakeIterations[algorithm] ?? ScramStoredKeys.recommendedIterations,
                salt: Array(salt.prefix(ScramStoredKeys.saltLength)), storedKey: ScramStoredKeys.randomBytes(algorithm.keyLength),
                serverKey: ScramStoredKeys.randomBytes(algorithm.keyLength))
        }
    }

    /// Random per process, so made-up salts cannot be predicted or told apart from real ones.
    static let fakeSaltKey = SymmetricKey(size: .bits256)

    private let configuration: Mutex<Configuration>

    public init(_ configuration: Configuration) {
        self.configuration = Mutex(configuration)
    }

    /// Installs the stores a reload loaded; exchanges in progress finish with the old ones.
    public func update(_ configuration: Configuration) {
        self.configuration.withLock { $0 = configuration }
    }

    public func supports(method: String) -> Bool {
        ScramAlgorithm(mechanism: method) != nil && !configuration.withLock { $0.sources.isEmpty }
    }

    public func begin(method: String, clientID: String, username: String?, connection: ConnectionInfo) -> any AuthenticationExchange {
        ScramExchange(algorithm: ScramAlgorithm(mechanism: method) ?? .sha256, configuration: configuration.withLock { $0 },
                      clientID: clientID, expectedUsername: username.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// 18 random bytes, base64: printable and without `,`.
    static func makeNonce() -> String {
        Data(ScramStoredKeys.randomBytes(18)).base64EncodedString()
    }
}
