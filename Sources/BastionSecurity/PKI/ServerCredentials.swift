import Foundation
import X509

/// A TLS listener's own certificate chain and key, checked the way the broker must refuse to start
/// with them: key readable by group/others, key not matching the certificate, certificate expired or
/// not yet valid. The PEM bytes are kept so the TLS stack loads exactly what was checked.
public struct ServerCredentials: Sendable {
    public var certificateFile: String
    public var keyFile: String
    /// Leaf first.
    public var chain: [Certificate]
    public var chainPEM: [UInt8]
    public var keyPEM: [UInt8]
    /// Non-fatal findings worth a log line (e.g. expiry within 30 days).
    public var warnings: [String]

    public static let expiryWarningInterval: TimeInterval = 30 * 86_400

    public static func load(certificateFile: String, keyFile: String, now: Date) throws -> ServerCredentials {
        try PKIFiles.checkKeyPermissions(keyFile, what: "TLS key")
        let chainPEM = try PKIFiles.read(certificateFile, what: "TLS certificate")
        let keyPEM = try PKIFiles.read(keyFile, what: "TLS key")
        let chain = try PKIFiles.readCertificates(certificateFile, what: "TLS certificate")
        let key = try PKIFiles.readPrivateKey(keyFile, what: "TLS key")
        guard let leaf = chain.first else {
            throw PKIError(.malformed, "TLS certificate file \(certificateFile) contains no certificate")
        }
        guard key.publicKey == leaf.publicKey else {
            throw PKIError(
                .keyMismatch,
                "TLS certificate \(certificateFile) and key \(keyFile) do not belong together; point tls.cert and tls.key at a matching pair"
            )
        }
        let subject = String(describing: leaf.subject)
        if now > leaf.notValidAfter {
            throw PKIError(
                .expired,
                "TLS certificate \(certificateFile) (\(subject)) expired at \(ClientCertificateRejection.format(leaf.notValidAfter)); issue a new one (e.g. bastion certs server --san HOST)"
            )
        }
        if now < leaf.notValidBefore {
            throw PKIError(
                .notYetValid,
                "TLS certificate \(certificateFile) (\(subject)) is not valid before \(ClientCertificateRejection.format(leaf.notValidBefore)); check the system clock"
            )
        }
        var warnings: [String] = []
        if leaf.notValidAfter.timeIntervalSince(now) < expiryWarningInterval {
            warnings.append(
                "TLS certificate \(certificateFile) (\(subject)) expires at \(ClientCertificateRejection.format(leaf.notValidAfter)); renew it and send SIGHUP"
            )
        }
        return ServerCredentials(
            certificateFile: certificateFile,
            keyFile: keyFile,
            chain: chain,
            chainPEM: chainPEM,
            keyPEM: keyPEM,
            warnings: warnings
        )
    }
}

/// The CA bundle and CRLs that client certificates are verified against.
public struct ClientTrustMaterial: Sendable {
    public var caFile: String
    public var caCertificates: [Certificate]
    public var revocationLists: [TrustedRevocationList]
    public var warnings: [String]

    /// Every CRL must be signed by a CA in the bundle; a CRL past its nextUpdate is still enforced
    /// (it lists at least those revocations) but produces a warning.
    public static func load(caFile: String, crlFiles: [String], now: Date) throws -> ClientTrustMaterial {
        let cas = try PKIFiles.readCertificates(caFile, what: "client CA")
        var warnings: [String] = []
        for ca in cas {
            let isCA: Bool
            if case .isCertificateAuthority = try? ca.extensions.basicConstraints { isCA = true } else { isCA = false }
            if !isCA {
                warnings.append(
                    "client CA file \(caFile): \(ca.subject) is not a CA certificate; only that exact certificate will be trusted"
                )
            }
            if now > ca.notValidAfter {
                warnings.append(
                    "client CA file \(caFile): \(ca.subject) expired at \(ClientCertificateRejection.format(ca.notValidAfter)); certificates it issued are refused"
                )
            }
        }
        var lists: [TrustedRevocationList] = []
        for file in crlFiles {
            let bytes = try PKIFiles.read(file, what: "CRL")
            for crl in try CertificateRevocationList.parseFile(bytes, path: file) {
                guard let signer = cas.first(where: { crl.isSigned(by: $0) }) else {
                    throw PKIError(
                        .malformed,
                        "CRL file \(file) (issuer \(crl.issuer)) is not signed by any CA in \(caFile); a CRL must come from a CA in tls.ca"
                    )
                }
                if let next = crl.nextUpdate, now > next {
                    warnings.append(
                        "CRL file \(file) is past its next update (\(ClientCertificateRejection.format(next))); its revocations stay enforced, publish a fresh CRL (bastion certs crl) and send SIGHUP"
                    )
                }
                lists.append(TrustedRevocationList(list: crl, signer: signer))
            }
        }
        for ca in cas where !lists.contains(where: { $0.signer == ca }) {
            warnings.append(
                "client CA file \(caFile): no CRL from \(ca.subject) in tls.crl; revocation is not checked for certificates it issued"
            )
        }
        return ClientTrustMaterial(caFile: caFile, caCertificates: cas, revocationLists: lists, warnings: warnings)
    }
}
