import BastionSecurity
import NIOSSL

/// Why a TLS handshake failed, in the words an operator needs: a stable `code` for log searches and
/// a sentence. The certificate reason comes from our verifier when it made the decision; otherwise
/// it is read from BoringSSL's error.
struct TLSHandshakeFailure: Sendable, Equatable, CustomStringConvertible {
    var code: String
    var detail: String
    /// Certificate problems are logged at warning (someone holds a key we do not accept); protocol
    /// noise such as scanners and old clients at notice.
    var isCertificateProblem: Bool

    var description: String { "\(code): \(detail)" }

    static func classify(
        _ error: any Error,
        rejection: ClientCertificateRejection?,
        minimumVersion: TLSMinimumVersion
    ) -> TLSHandshakeFailure {
        if let rejection {
            return TLSHandshakeFailure(code: rejection.code, detail: rejection.description, isCertificateProblem: true)
        }
        let text = String(describing: error).lowercased()
        func has(_ needles: String...) -> Bool { needles.contains { text.contains($0) } }
        if has("peer_did_not_return_a_certificate", "certificate_required") {
            return TLSHandshakeFailure(
                code: ClientCertificateRejection.missing.code,
                detail: ClientCertificateRejection.missing.description,
                isCertificateProblem: true
            )
        }
        if has("unsupported_protocol", "wrong_version_number_for_protocol") {
            return TLSHandshakeFailure(
                code: "protocol_version",
                detail: "client offered only TLS versions older than \(minimumVersion == .tls13 ? "1.3" : "1.2")",
                isCertificateProblem: false
            )
        }
        if has("no_shared_cipher", "no_cipher_match", "no_common_signature_algorithms", "no_shared_group", "wrong_curve") {
            return TLSHandshakeFailure(
                code: "no_shared_cipher",
                detail: "client offers no ECDHE+AEAD cipher suite, key exchange group or signature algorithm we accept",
                isCertificateProblem: false
            )
        }
        if has("certificate_verify_failed") {
            return TLSHandshakeFailure(
                code: "certificate_verify_failed",
                detail: "client certificate failed verification",
                isCertificateProblem: true
            )
        }
        if has("http_request", "https_proxy_request") {
            return TLSHandshakeFailure(
                code: "not_tls",
                detail: "client spoke plain HTTP to a TLS port",
                isCertificateProblem: false
            )
        }
        if has("wrong_version_number", "unexpected_record", "decode_error", "record_too_large", "packet_length_too_long",
               "excessive_message_size", "bad_packet_length", "invalid_compression_list", "unexpected_message")
        {
            return TLSHandshakeFailure(
                code: "not_tls",
                detail: "bytes are not a valid TLS ClientHello",
                isCertificateProblem: false
            )
        }
        if has("alert_unknown_ca", "alert_bad_certificate", "alert_certificate_unknown", "alert_unsupported_certificate") {
            return TLSHandshakeFailure(
                code: "client_rejected_server_certificate",
                detail: "client does not trust the server certificate (give it the CA file with --cafile)",
                isCertificateProblem: false
            )
        }
        if has("alert") {
            return TLSHandshakeFailure(code: "client_alert", detail: "client aborted the handshake: \(error)", isCertificateProblem: false)
        }
        if has("eof during handshake") {
            return TLSHandshakeFailure(
                code: "connection_closed",
                detail: "client closed the connection during the handshake",
                isCertificateProblem: false
            )
        }
        if let sslError = error as? NIOSSLError, case .uncleanShutdown = sslError {
            return TLSHandshakeFailure(
                code: "connection_closed",
                detail: "client closed the connection during the handshake",
                isCertificateProblem: false
            )
        }
        return TLSHandshakeFailure(code: "handshake_failed", detail: "\(error)", isCertificateProblem: false)
    }
}
