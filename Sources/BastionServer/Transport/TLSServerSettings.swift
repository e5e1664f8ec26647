import BastionSecurity
import NIOCore

/// Lowest TLS version a listener accepts (`tls.min_version`).
public enum TLSMinimumVersion: String, Sendable, Hashable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// What the MQTT layer must enforce on top of the TLS handshake for this listener.
public struct ClientCertificateRequirements: Sendable, Hashable {
    /// The handshake already refused clients without a valid certificate.
    public var requireCertificate: Bool
    /// Refuse CONNECT when the client id differs from the certificate identity.
    public var requireClientIDMatch: Bool
    /// Two-factor: a valid certificate AND a matching user name/password.
    public var requirePassword: Bool

    public init(requireCertificate: Bool = false, requireClientIDMatch: Bool = false, requirePassword: Bool = false) {
        self.requireCertificate = requireCertificate
        self.requireClientIDMatch = requireClientIDMatch
        self.requirePassword = requirePassword
    }
}

/// A TLS listener's settings after the config file and the `--tls-*` flags have been combined and
/// checked. Building the TLS context from them (file IO) is `TLSContextHolder`'s job.
public struct TLSServerSettings: Sendable, Hashable {
    public var certificateFile: String
    public var keyFile: String
    /// CA bundle for client certificates; nil means client certificates are neither requested nor read.
    public var clientCAFile: String?
    public var crlFiles: [String]
    public var requireCertificate: Bool
    public var identitySource: CertificateIdentitySource
    public var requireClientIDMatch: Bool
    public var requirePassword: Bool
    public var minimumVersion: TLSMinimumVersion
    public var handshakeTimeout: TimeAmount

    public static let defaultHandshakeTimeout = TimeAmount.seconds(10)

    public init(
        certificateFile: String,
        keyFile: String,
        clientCAFile: String? = nil,
        crlFiles: [String] = [],
        requireCertificate: Bool = false,
        identitySource: CertificateIdentitySource = .default,
        requireClientIDMatch: Bool = false,
        requirePassword: Bool = false,
        minimumVersion: TLSMinimumVersion = .tls12,
        handshakeTimeout: TimeAmount = defaultHandshakeTimeout
    ) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.crlFiles = crlFiles
        self.requireCertificate = requireCertificate
        self.identitySource = identitySource
        self.requireClientIDMatch = requireClientIDMatch
        self.requirePassword = requirePassword
        self.minimumVersion = minimumVersion
        self.handshakeTimeout = handshakeTimeout
    }

    public var clientCertificateRequirements: ClientCertificateRequirements {
        ClientCertificateRequirements(
            requireCertificate: requireCertificate,
            requireClientIDMatch: requireClientIDMatch,
            requirePassword: requirePassword
        )
    }

    /// The `--tls-cert/--tls-key/--tls-ca/--tls-crl/--require-certificate` flags; set values win over
    /// the file.
    public struct Overrides: Sendable, Hashable {
        public var certificateFile: String?
        public var keyFile: String?
        public var clientCAFile: String?
        public var crlFiles: [String]?
        public var requireCertificate: Bool?

        public init(
            certificateFile: String? = nil,
            keyFile: String? = nil,
            clientCAFile: String? = nil,
            crlFiles: [String]? = nil,
            requireCertificate: Bool? = nil
        ) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.clientCAFile = clientCAFile
            self.crlFiles = crlFiles
            self.requireCertificate = requireCertificate
        }
    }

    /// Combines a listener's `tls:` section with the flags. `keyPath` names the section in messages
    /// (e.g. `listeners[1].tls`). `fallback` supplies cert/key/CA when neither file nor flags do (the
    /// generated development CA); without it a missing cert or key is an error.
    public static func resolve(
        _ config: TLSConfig?,
        overrides: Overrides = Overrides(),
        keyPath: String = "tls",
        fallback: DevelopmentPKI.Files? = nil
    ) throws(TLSSettingsError) -> TLSServerSettings {
        let config = config ?? TLSConfig()
        var certificateFile = overrides.certificateFile ?? config.cert
        var keyFile = overrides.keyFile ?? config.key
        var clientCAFile = overrides.clientCAFile ?? config.ca
        if certificateFile == nil, keyFile == nil, let fallback {
            certificateFile = fallback.certFile
            keyFile = fallback.keyFile
            if clientCAFile == nil { clientCAFile = fallback.caFile }
        }
        guard let certificateFile, !certificateFile.isEmpty else {
            throw TLSSettingsError(
                "\(keyPath).cert",
                "a TLS listener needs a certificate chain (PEM): set \(keyPath).cert or --tls-cert (bastion certs server --san HOST makes one)"
            )
        }
        guard let keyFile, !keyFile.isEmpty else {
            throw TLSSettingsError("\(keyPath).key", "a TLS listener needs a private key (PEM): set \(keyPath).key or --tls-key")
        }
        let crlFiles = overrides.crlFiles ?? config.crl ?? []
        let requireCertificate = overrides.requireCertificate ?? config.require_certificate ?? false
        if requireCertificate, clientCAFile == nil {
            throw TLSSettingsError(
                "\(keyPath).require_certificate",
                "requiring client certificates needs the CA that issued them: set \(keyPath).ca or --tls-ca"
            )
        }
        if !crlFiles.isEmpty, clientCAFile == nil {
            throw TLSSettingsError(
                "\(keyPath).crl",
                "CRLs are checked against the client CA: set \(keyPath).ca or --tls-ca as well"
            )
        }

        var identitySource = CertificateIdentitySource.default
        if let text = config.identity_from {
            guard let source = CertificateIdentitySource(rawValue: text) else {
                throw TLSSettingsError(
                    "\(keyPath).identity_from",
                    "\"\(text)\" is not one of \(CertificateIdentitySource.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            identitySource = source
        }

        var minimumVersion = TLSMinimumVersion.tls12
        if let text = config.min_version {
            let normalized = text.lowercased().replacingOccurrences(of: "tlsv", with: "").replacingOccurrences(of: "tls", with: "")
            guard let version = TLSMinimumVersion(rawValue: normalized) else {
                throw TLSSettingsError(
                    "\(keyPath).min_version",
                    "\"\(text)\" is not supported; use \"1.2\" (default) or \"1.3\" (TLS 1.0 and 1.1 are never accepted)"
                )
            }
            minimumVersion = version
        }

        var handshakeTimeout = defaultHandshakeTimeout
        if let seconds = config.handshake_timeout {
            guard seconds.isFinite, seconds > 0, seconds <= 300 else {
                throw TLSSettingsError("\(keyPath).handshake_timeout", "must be between 0 and 300 seconds, got \(seconds)")
            }
            handshakeTimeout = .nanoseconds(Int64(seconds * 1_000_000_000))
        }

        let requireClientIDMatch = config.require_client_id_match ?? false
        let requirePassword = config.require_password ?? false
        if requireClientIDMatch, clientCAFile == nil {
            throw TLSSettingsError(
                "\(keyPath).require_client_id_match",
                "matching the client id to the certificate needs client certificates: set \(keyPath).ca and \(keyPath).require_certificate"
            )
        }
        if requirePassword, !requireCertificate {
            throw TLSSettingsError(
                "\(keyPath).require_password",
                "two-factor login needs \(keyPath).require_certificate: true as well"
            )
        }

        return TLSServerSettings(
            certificateFile: certificateFile,
            keyFile: keyFile,
            clientCAFile: clientCAFile,
            crlFiles: crlFiles,
            requireCertificate: requireCertificate,
            identitySource: identitySource,
            requireClientIDMatch: requireClientIDMatch,
            requirePassword: requirePassword,
            minimumVersion: minimumVersion,
            handshakeTimeout: handshakeTimeout
        )
    }
}

/// A `tls:` setting that cannot work; `key` is the config key path.
public struct TLSSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(_ key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
