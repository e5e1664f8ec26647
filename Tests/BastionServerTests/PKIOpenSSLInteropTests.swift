import BastionSecurity
import Foundation
import Testing
import X509

/// Interoperability with CRLs made by `openssl ca -gencrl` (EC P-256 CA, one entry with a reason
/// code, AKI and CRL number extensions). The fixtures were generated once with OpenSSL 3.0.
@Suite("PKI: OpenSSL-made CRLs")
struct PKIOpenSSLInteropTests {
    static let caPEM = """
-----BEGIN CERTIFICATE-----
MIIBeDCCAR6gAwIBAgIUNGy4eJ95OjIiRQC/T2Khoko7MwUwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPT3BlblNTTCBUZXN0IENBMB4XDTI2MTEyMTE5NDU0NloXDTM2
MTExODE5NDU0NlowGjEYMBYGA1UEAwwPT3BlblNTTCBUZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEP+GxNOGDZjOzhmyxrt5B4SR5Cdcd/r1pHqraclpy
dyWrSC5R8mIM5KXROSh0zNVE32P93gAG9zgfsj9vSkrnn6NCMEAwDwYDVR0TAQH/
BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFJH2bWm8Nz3ChJX8Lav5
0BmMQL2PMAoGCCqGSM49BAMCA0gAMEUCICNCxaD3mWop7XjrhpajaXkIy21zajlI
QmFp2v4ClhUtAiEA9PeGm26WC42Cm+3XlVDJ5Icf4yw6BHNUhQ3FR5n5PKQ=
-----END CERTIFICATE-----
"""

    static let leafPEM = """
-----BEGIN CERTIFICATE-----
MIIBeDCCAR6gAwIBAgIDAJoBMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMMD09wZW5T
U0wgVGVzdCBDQTAeFw0yNjExMjExOTQ1NDZaFw0zNjExMTgxOTQ1NDZaMBYxFDAS
BgNVBAMMC3Jldm9rZWQtb25lMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGTMi
oXMTFMqgRvUVaQlOOJpJBtfbdHj1dcmP8jlfo8w/wgtFy4TdIqZE+l5wNE2kjJHZ
DTLPqTj+3PkJNu8XR6NXMFUwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYE
FNpSL6WFjR6YBJU8ubrGbHdAImLjMB8GA1UdIwQYMBaAFJH2bWm8Nz3ChJX8Lav5
0BmMQL2PMAoGCCqGSM49BAMCA0gAMEUCIQCYrJfcGClQMeRakR0roiZJzMTW1+bp
iQUvPuL5jQZ8BgIgLVHurZ38grSxUzj4mrFPYHArAYXHKbriXiYqThfZpF8=
-----END CERTIFICATE-----
"""

    static let crlPEM = """
-----BEGIN X509 CRL-----
MIH5MIGhAgEBMAoGCCqGSM49BAMCMBoxGDAWBgNVBAMMD09wZW5TU0wgVGVzdCBD
QRcNMjYxMTIxMTk0NTQ2WhcNMzYxMTE4MTk0NTQ2WjAkMCICAwCaARcNMjYxMTIx
MTk0NTQ2WjAMMAoGA1UdFQQDCgEBoDAwLjAfBgNVHSMEGDAWgBSR9m1pvDc9woSV
/C2r+dAZjEC9jzALBgNVHRQEBAICEAAwCgYIKoZIzj0EAwIDRwAwRAIgcOjuhVtm
TI8cqMkAje3oYvjf4cqvKDpyOwNRpeJaNOsCIAF1TEmXUbAwc40Ix9dN7jmH+O1H
ruIzcYtF+CDCKNzX
-----END X509 CRL-----
"""

    @Test func parsesVerifiesAndEnforcesAnOpenSSLCRL() async throws {
        let ca = try Certificate(pemEncoded: Self.caPEM)
        let leaf = try Certificate(pemEncoded: Self.leafPEM)
        let crl = try #require(try CertificateRevocationList.parseFile(Array(Self.crlPEM.utf8), path: "openssl.crl").first)
        #expect(crl.isSigned(by: ca))
        #expect(crl.isRevoked(leaf.serialNumber))
        #expect(leaf.serialNumber.hexString == "9A01")
        #expect(crl.crlNumber == [0x10, 0x00])
        let verifier = ClientCertificateVerifier(
            trustRoots: [ca],
            revocationLists: [TrustedRevocationList(list: crl, signer: ca)],
            identitySource: .commonName
        )
        let result = await verifier.verify(presented: [leaf], at: leaf.notValidBefore + 86_400)
        guard case .failure(let rejection) = result else {
            Issue.record("revoked certificate accepted")
            return
        }
        #expect(rejection.code == "revoked")
        // And the DER form of the same CRL.
        let der = try #require(try CertificateRevocationList.parseFile(crl.derBytes, path: "openssl.der").first)
        #expect(der == crl)
    }
}
