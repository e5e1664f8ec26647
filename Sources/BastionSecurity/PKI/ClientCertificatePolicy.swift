import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// A CRL accepted at load time, together with the key of the CA that signed it.
public struct TrustedRevocationList: Sendable, Hashable {
    public var list: CertificateRevocationList
    public var signer: Certificate

    public init(list: CertificateRevocationList, signer: Certificate) {
        self.list = list
        self.signer = signer
    }
}

/// The client-certificate rules on top of RFC 5280 path validation, as one `VerifierPolicy` so that
/// the verifier reports *our* reason for a refusal: validity of every certificate at `validationTime`,
/// the clientAuth extended key usage on the leaf, and revocation of every non-root certificate by a CRL
/// from its issuer. Each failed candidate chain appends its reason to `recorder` (the verifier hides
/// its policy behind an opaque type, so the reasons leave through a reference).
struct ClientCertificatePolicy: VerifierPolicy {
    final class Recorder {
        var rejections: [ClientCertificateRejection] = []
    }

    let verifyingCriticalExtensions: [ASN1ObjectIdentifier]
    let validationTime: Date
    let revocationLists: [TrustedRevocationList]
    let recorder: Recorder
    var rfc5280: RFC5280Policy

    init(validationTime: Date, revocationLists: [TrustedRevocationList], recorder: Recorder) {
        self.validationTime = validationTime
        self.revocationLists = revocationLists
        self.recorder = recorder
        self.rfc5280 = RFC5280Policy(fixedExpiryValidationTime: validationTime)
        self.verifyingCriticalExtensions =
            rfc5280.verifyingCriticalExtensions + [
                .X509ExtensionID.extendedKeyUsage,
                // Critical when the subject is empty (RFC 5280 §4.2.1.6); we read it for the identity.
                .X509ExtensionID.subjectAlternativeName,
            ]
    }

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        if let rejection = Self.check(chain: Array(chain), at: validationTime, revocationLists: revocationLists) {
            recorder.rejections.append(rejection)
            return .failsToMeetPolicy(reason: rejection.description)
        }
        return rfc5280.chainMeetsPolicyRequirements(chain: chain)
    }

    /// The checks of this policy as a pure function of the candidate chain (leaf first, root last).
    static func check(
        chain: [Certificate],
        at now: Date,
        revocationLists: [TrustedRevocationList]
    ) -> ClientCertificateRejection? {
        for certificate in chain {
            let subject = String(describing: certificate.subject)
            if now > certificate.notValidAfter {
                return .expired(subject: subject, notValidAfter: certificate.notValidAfter)
            }
            if now < certificate.notValidBefore {
                return .notYetValid(subject: subject, notValidBefore: certificate.notValidBefore)
            }
        }
        guard let leaf = chain.first else { return .missing }
        let leafSubject = String(describing: leaf.subject)
        do {
            guard let usage = try leaf.extensions.extendedKeyUsage, usage.contains(.clientAuth) else {
                return .missingClientAuthUsage(subject: leafSubject)
            }
        } catch {
            return .malformed("extended key usage of \(leafSubject) cannot be parsed: \(error)")
        }
        for (index, certificate) in chain.enumerated().dropLast() {
            let issuer = chain[index + 1]
            for trusted in revocationLists
            where trusted.signer.subject == issuer.subject && trusted.signer.publicKey == issuer.publicKey
                && trusted.list.issuer == certificate.issuer
            {
                if trusted.list.isRevoked(certificate.serialNumber) {
                    return .revoked(
                        subject: String(describing: certificate.subject),
                        serialNumber: certificate.serialNumber.hexString
                    )
                }
            }
        }
        return nil
    }
}

/// Verifies client certificate chains with swift-certificates' `Verifier` against a CA bundle and the
/// operator's CRLs. Immutable and `Sendable`: one instance per loaded TLS configuration, shared by all
/// handshakes.
public struct ClientCertificateVerifier: Sendable {
    public let trustRoots: [Certificate]
    public let revocationLists: [TrustedRevocationList]
    public let identitySource: CertificateIdentitySource

    public init(
        trustRoots: [Certificate],
        revocationLists: [TrustedRevocationList],
        identitySource: CertificateIdentitySource
    ) {
        self.trustRoots = trustRoots
        self.revocationLists = revocationLists
        self.identitySource = identitySource
    }

    /// `presented` is the peer's chain as sent, leaf first.
    public func verify(
        presented: [Certificate],
        at now: Date
    ) async -> Result<ClientCertificateInfo, ClientCertificateRejection> {
        await verifyChain(presented: presented, at: now).map(\.info)
    }

    public struct Verified: Sendable {
        public var info: ClientCertificateInfo
        /// The path that validated, leaf first, root last.
        public var chain: [Certificate]
    }

    /// `verify`, also returning the validated path.
    public func verifyChain(
        presented: [Certificate],
        at now: Date
    ) async -> Result<Verified, ClientCertificateRejection> {
        guard let leaf = presented.first else { return .failure(.missing) }
        let recorder = ClientCertificatePolicy.Recorder()
        let policy = ClientCertificatePolicy(validationTime: now, revocationLists: revocationLists, recorder: recorder)
        let handled = Set(policy.verifyingCriticalExtensions)
        if let unknown = leaf.extensions.first(where: { $0.critical && !handled.contains($0.oid) }) {
            return .failure(
                .unsupportedCriticalExtension(subject: String(describing: leaf.subject), oid: String(describing: unknown.oid))
            )
        }
        var verifier = Verifier(rootCertificates: CertificateStore(trustRoots)) { policy }
        let result = await verifier.validate(
            leaf: leaf,
            intermediates: CertificateStore(presented.dropFirst())
        )
        switch result {
        case .validCertificate(let chain):
            do {
                let info = try ClientCertificateInfo(certificate: leaf, identitySource: identitySource)
                return .success(Verified(info: info, chain: Array(chain)))
            } catch {
                return .failure(error)
            }
        case .couldNotValidate(let failures):
            if let rejection = recorder.rejections.first {
                return .failure(rejection)
            }
            if let failure = failures.first {
                return .failure(.invalidChain(failure.policyFailureReason.description))
            }
            return .failure(
                .unknownAuthority(
                    subject: String(describing: leaf.subject),
                    issuer: String(describing: leaf.issuer)
                )
            )
        }
    }
}
