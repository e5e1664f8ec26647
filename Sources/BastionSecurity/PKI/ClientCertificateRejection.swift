import Foundation

/// Why a client certificate was refused. `code` is stable (logs and audit events key on it);
/// `description` is the sentence an operator reads.
public enum ClientCertificateRejection: Error, Sendable, Hashable, CustomStringConvertible {
    case missing
    case malformed(String)
    case unknownAuthority(subject: String, issuer: String)
    case expired(subject: String, notValidAfter: Date)
    case notYetValid(subject: String, notValidBefore: Date)
    case missingClientAuthUsage(subject: String)
    case revoked(subject: String, serialNumber: String)
    case noIdentity(subject: String, source: CertificateIdentitySource)
    case unsupportedCriticalExtension(subject: String, oid: String)
    case invalidChain(String)

    public var code: String {
        switch self {
        case .missing: return "missing_certificate"
        case .malformed: return "malformed_certificate"
        case .unknownAuthority: return "unknown_ca"
        case .expired: return "expired"
        case .notYetValid: return "not_yet_valid"
        case .missingClientAuthUsage: return "no_client_auth"
        case .revoked: return "revoked"
        case .noIdentity: return "no_identity"
        case .unsupportedCriticalExtension: return "unsupported_critical_extension"
        case .invalidChain: return "invalid_chain"
        }
    }

    public var description: String {
        switch self {
        case .missing:
            return "client sent no certificate but this listener requires one"
        case .malformed(let detail):
            return "client certificate cannot be parsed: \(detail)"
        case .unknownAuthority(let subject, let issuer):
            return "certificate \(subject) is not issued by a trusted CA (issuer \(issuer))"
        case .expired(let subject, let date):
            return "certificate \(subject) expired at \(Self.format(date))"
        case .notYetValid(let subject, let date):
            return "certificate \(subject) is not valid before \(Self.format(date))"
        case .missingClientAuthUsage(let subject):
            return "certificate \(subject) lacks the clientAuth extended key usage"
        case .revoked(let subject, let serial):
            return "certificate \(subject) (serial \(serial)) is revoked"
        case .noIdentity(let subject, let source):
            return "certificate \(subject) has no \(source) to use as identity"
        case .unsupportedCriticalExtension(let subject, let oid):
            return "certificate \(subject) has an unsupported critical extension \(oid)"
        case .invalidChain(let detail):
            return "certificate chain is invalid: \(detail)"
        }
    }

    static func format(_ date: Date) -> String {
        let c = CivilTime(date)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(c.year)-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second))Z"
    }
}
