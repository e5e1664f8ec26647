import Crypto
import Foundation
import SwiftASN1
import X509

/// Which certificate field becomes the MQTT identity (config `tls.identity_from`).
public enum CertificateIdentitySource: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case commonName = "cn"
    case sanDNS = "san_dns"
    case sanURI = "san_uri"
    case sanEmail = "san_email"

    public static let `default` = CertificateIdentitySource.commonName

    public var description: String {
        switch self {
        case .commonName: return "subject common name"
        case .sanDNS: return "DNS subject alternative name"
        case .sanURI: return "URI subject alternative name"
        case .sanEmail: return "e-mail subject alternative name"
        }
    }
}

/// What the broker learns from a verified client certificate. The authorization layer sees `identity`
/// as the user name; audit records the serial and subject.
public struct ClientCertificateInfo: Sendable, Hashable {
    public var identity: String
    public var identitySource: CertificateIdentitySource
    /// Upper-case hex, as `openssl x509 -serial` and `bastion certs list` print it.
    public var serialNumber: String
    /// RFC 4514 string, e.g. `CN=sensor-1,O=Plant`.
    public var subject: String
    public var issuer: String
    public var commonName: String?
    public var dnsNames: [String]
    public var uris: [String]
    public var emails: [String]
    public var notValidAfter: Date
    /// SHA-256 of the certificate's DER encoding, lowercase hex (what identity backends key on).
    public var fingerprintSHA256: String?

    public init(
        identity: String,
        identitySource: CertificateIdentitySource,
        serialNumber: String,
        subject: String,
        issuer: String,
        commonName: String?,
        dnsNames: [String],
        uris: [String],
        emails: [String],
        notValidAfter: Date,
        fingerprintSHA256: String? = nil
    ) {
        self.identity = identity
        self.identitySource = identitySource
        self.serialNumber = serialNumber
        self.subject = subject
        self.issuer = issuer
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.uris = uris
        self.emails = emails
        self.notValidAfter = notValidAfter
        self.fingerprintSHA256 = fingerprintSHA256
    }

    /// Extracts the identity from `certificate`; throws the rejection when the chosen field is absent
    /// (a certificate that names nobody must not authenticate anybody).
    public init(certificate: Certificate, identitySource: CertificateIdentitySource) throws(ClientCertificateRejection) {
        let subject = String(describing: certificate.subject)
        var dnsNames: [String] = []
        var uris: [String] = []
        var emails: [String] = []
        do {
            if let names = try certificate.extensions.subjectAlternativeNames {
                for name in names {
                    switch name {
                    case .dnsName(let value): dnsNames.append(value)
                    case .uniformResourceIdentifier(let value): uris.append(value)
                    case .rfc822Name(let value): emails.append(value)
                    default: break
                    }
                }
            }
        } catch {
            throw .malformed("subject alternative names of \(subject) cannot be parsed: \(error)")
        }
        let commonName = certificate.subject.commonName
        let identity: String?
        switch identitySource {
        case .commonName: identity = commonName
        case .sanDNS: identity = dnsNames.first
        case .sanURI: identity = uris.first
        case .sanEmail: identity = emails.first
        }
        guard let identity, !identity.isEmpty else {
            throw .noIdentity(subject: subject, source: identitySource)
        }
        self.init(
            identity: identity,
            identitySource: identitySource,
            serialNumber: certificate.serialNumber.hexString,
            subject: subject,
            issuer: String(describing: certificate.issuer),
            commonName: commonName,
            dnsNames: dnsNames,
            uris: uris,
            emails: emails,
            notValidAfter: certificate.notValidAfter,
            fingerprintSHA256: Self.fingerprint(certificate)
        )
    }

    private static func fingerprint(_ certificate: Certificate) -> String? {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(certificate)) != nil else { return nil }
        return SHA256.hash(data: serializer.serializedBytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

extension DistinguishedName {
    /// The most specific (last) common name, unescaped; nil when there is none or it is not a string.
    public var commonName: String? {
        var result: String?
        for rdn in self {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                if let value = String(attribute.value) { result = value }
            }
        }
        return result
    }
}
