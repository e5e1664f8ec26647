import BastionSecurity
import Foundation
import Logging
import NIOCore
import NIOSSL
import Synchronization
import X509

/// The TLS material of one listener, swappable at run time. `current` is what a new handshake uses;
/// `reload()` (on SIGHUP) re-reads every file and swaps atomically, or keeps the old material when
/// anything is wrong. Connections already established keep the context they started with.
public final class TLSContextHolder: Sendable {
    /// One consistent generation of loaded material.
    public struct Snapshot: Sendable {
        public let settings: TLSServerSettings
        public let context: NIOSSLContext
        /// Present when the listener has a client CA.
        public let verifier: ClientCertificateVerifier?
        public let serverCertificate: Certificate
        public let loadedAt: Date
        /// Intermediates of chains verified with this material, to re-verify resumed sessions (which
        /// carry only the leaf).
        let intermediates = IntermediateCertificateCache()
    }

    /// TLS 1.2 suites: ECDHE key exchange and AEAD only, one per server key type, so the server's choice
    /// never depends on the client's ordering (NIOSSL cannot switch on server cipher preference).
    /// TLS 1.3 suites are all AEAD with (EC)DHE and are chosen by BoringSSL in server order.
    public static let tls12CipherSuites = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    /// Post-quantum hybrid first, then the classic ECDHE groups every client has.
    public static let keyExchangeGroups: [NIOTLSCurve] = [.x25519_MLKEM768, .x25519, .secp256r1, .secp384r1]
    /// Offered in this order of preference; a client that offers neither gets the listener's default.
    public static let applicationProtocols = [ALPN.mqtt, ALPN.http1]

    public enum ALPN {
        public static let mqtt = "mqtt"
        public static let http1 = "http/1.1"
    }

    public let name: String
    public let settings: TLSServerSettings
    let clock: @Sendable () -> Date
    private let logger: Logger
    private let state: Mutex<Snapshot>

    /// Loads everything once; throws `TLSLoadError` naming the listener and the fix (startup refuses).
    public init(
        name: String,
        settings: TLSServerSettings,
        logger: Logger,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.name = name
        self.settings = settings
        self.clock = clock
        self.logger = logger
        let (snapshot, warnings) = try Self.load(name: name, settings: settings, now: clock())
        for warning in warnings {
            logger.warning("\(warning)", metadata: ["listener": "\(name)"])
        }
        self.state = Mutex(snapshot)
    }

    public var current: Snapshot {
        state.withLock { $0 }
    }

    /// Re-reads certificate, key, CA and CRLs. On failure logs the reason, keeps the previous material
    /// and rethrows.
    public func reload() throws {
        do {
            let (snapshot, warnings) = try Self.load(name: name, settings: settings, now: clock())
            state.withLock { $0 = snapshot }
            for warning in warnings {
                logger.warning("\(warning)", metadata: ["listener": "\(name)"])
            }
            logger.notice(
                "TLS material reloaded",
                metadata: [
                    "listener": "\(name)",
                    "certificate": "\(snapshot.serverCertificate.subject)",
                    "expires": "\(snapshot.serverCertificate.notValidAfter)",
                    "crls": "\(snapshot.verifier?.revocationLists.count ?? 0)",
                ]
            )
        } catch {
            logger.error(
                "TLS reload rejected, still using the previous certificates: \(error)",
                metadata: ["listener": "\(name)"]
            )
            throw error
        }
    }

    static func load(
        name: String,
        settings: TLSServerSettings,
        now: Date
    ) throws(TLSLoadError) -> (Snapshot, [String]) {
        do {
            let credentials = try ServerCredentials.load(
                certificateFile: settings.certificateFile,
                keyFile: settings.keyFile,
                now: now
            )
            var warnings = credentials.warnings
            var trust: ClientTrustMaterial?
            if let caFile = settings.clientCAFile {
                let material = try ClientTrustMaterial.load(caFile: caFile, crlFiles: settings.crlFiles, now: now)
                warnings += material.warnings
                trust = material
            }

            let chain: [NIOSSLCertificate]
            let key: NIOSSLPrivateKey
            do {
                chain = try NIOSSLCertificate.fromPEMBytes(credentials.chainPEM)
                key = try NIOSSLPrivateKey(bytes: credentials.keyPEM, format: .pem)
            } catch {
                throw PKIError(
                    .malformed,
                    "the TLS library cannot load \(settings.certificateFile) / \(settings.keyFile): \(error)"
                )
            }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(key)
            )
            configuration.minimumTLSVersion = settings.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
            configuration.maximumTLSVersion = .tlsv13
            configuration.cipherSuites = tls12CipherSuites
            configuration.curves = keyExchangeGroups
            configuration.applicationProtocols = applicationProtocols
            configuration.renegotiationSupport = .none
            var verifier: ClientCertificateVerifier?
            if let trust {
                let roots = try trust.caCertificates.map { try NIOSSLCertificate(bytes: CertificateDER.serialize($0), format: .der) }
                configuration.trustRoots = .certificates(roots)
                configuration.sendCANameList = true
                // BoringSSL only decides whether a certificate is requested/required; the custom
                // verification callback (TLSClientVerification) replaces its chain checks.
                configuration.certificateVerification =
                    settings.requireCertificate ? .noHostnameVerification : .optionalVerification
                verifier = ClientCertificateVerifier(
                    trustRoots: trust.caCertificates,
                    revocationLists: trust.revocationLists,
                    identitySource: settings.identitySource
                )
            } else {
                configuration.certificateVerification = .none
            }
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: configuration)
            } catch {
                throw PKIError(.malformed, "the TLS library refused the configuration: \(error)")
            }
            guard let leaf = credentials.chain.first else {
                throw PKIError(.malformed, "\(settings.certificateFile) contains no certificate")
            }
            let snapshot = Snapshot(
                settings: settings,
                context: context,
                verifier: verifier,
                serverCertificate: leaf,
                loadedAt: now
            )
            return (snapshot, warnings)
        } catch let error as PKIError {
            throw TLSLoadError(listener: name, kind: error.kind, message: error.message)
        } catch {
            throw TLSLoadError(listener: name, kind: .malformed, message: "\(error)")
        }
    }
}

/// TLS material that cannot be used; the broker refuses to start (exit 2) with `description`.
public struct TLSLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var listener: String
    public var kind: PKIError.Kind
    public var message: String

    public var description: String { "listener \(listener): \(message)" }
}

/// Intermediate CA certificates that were part of a validated client chain. Bounded: it only serves
/// re-verification of resumed sessions, which fail closed if an intermediate is missing.
final class IntermediateCertificateCache: Sendable {
    static let capacity = 256
    private let certificates = Mutex<[Certificate]>([])

    func remember(_ validatedChain: [Certificate]) {
        // Leaf first, root last: everything in between is an intermediate.
        guard validatedChain.count > 2 else { return }
        let intermediates = validatedChain.dropFirst().dropLast()
        certificates.withLock { known in
            for certificate in intermediates where !known.contains(certificate) {
                if known.count >= Self.capacity { known.removeFirst() }
                known.append(certificate)
            }
        }
    }

    var all: [Certificate] { certificates.withLock { $0 } }
}
