import BastionSecurity
import Testing

@testable import BastionServer

@Suite("TLS handshake failure reasons")
struct TLSHandshakeFailureTests {
    struct FakeError: Error, CustomStringConvertible {
        var description: String
    }

    @Test(arguments: [
        ("error:100000f0:SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL", "protocol_version", false),
        ("error:100000c7:SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE", "missing_certificate", true),
        ("error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST", "not_tls", false),
        ("error:1000010b:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER", "not_tls", false),
        ("error:100000b8:SSL routines:OPENSSL_internal:NO_SHARED_CIPHER", "no_shared_cipher", false),
        ("error:100000f3:SSL routines:OPENSSL_internal:WRONG_CURVE", "no_shared_cipher", false),
        ("error:10000412:SSL routines:OPENSSL_internal:SSLV3_ALERT_BAD_CERTIFICATE", "client_rejected_server_certificate", false),
        ("error:10000418:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA", "client_rejected_server_certificate", false),
        ("EOF during handshake", "connection_closed", false),
        ("something new", "handshake_failed", false),
    ])
    func classifiesBoringSSLErrors(text: String, code: String, certificateProblem: Bool) {
        let failure = TLSHandshakeFailure.classify(FakeError(description: text), rejection: nil, minimumVersion: .tls12)
        #expect(failure.code == code)
        #expect(failure.isCertificateProblem == certificateProblem)
    }

    @Test func verifierReasonWinsOverTheLibraryError() {
        let failure = TLSHandshakeFailure.classify(
            FakeError(description: "CERTIFICATE_VERIFY_FAILED"),
            rejection: .revoked(subject: "CN=x", serialNumber: "01"),
            minimumVersion: .tls12
        )
        #expect(failure.code == "revoked")
        #expect(failure.detail.contains("serial 01"))
        #expect(failure.isCertificateProblem)
    }

    @Test func minimumVersionIsNamed() {
        let failure = TLSHandshakeFailure.classify(FakeError(description: "UNSUPPORTED_PROTOCOL"), rejection: nil, minimumVersion: .tls13)
        #expect(failure.detail.contains("1.3"))
    }
}
