import BastionSecurity
import NIOCore
import Testing

@testable import BastionServer

@Suite("TLS settings from config and flags")
struct TLSServerSettingsTests {
    func config(_ edit: (inout TLSConfig) -> Void) -> TLSConfig {
        var c = TLSConfig()
        c.cert = "/etc/bastion/server.pem"
        c.key = "/etc/bastion/server.key"
        edit(&c)
        return c
    }

    @Test func defaults() throws {
        let s = try TLSServerSettings.resolve(config { _ in })
        #expect(s.minimumVersion == .tls12)
        #expect(s.handshakeTimeout == .seconds(10))
        #expect(s.identitySource == .commonName)
        #expect(!s.requireCertificate)
        #expect(s.clientCAFile == nil)
    }

    @Test func fileValues() throws {
        let s = try TLSServerSettings.resolve(
            config {
                $0.ca = "/ca.pem"
                $0.crl = ["/a.crl", "/b.der"]
                $0.require_certificate = true
                $0.identity_from = "san_uri"
                $0.require_client_id_match = true
                $0.require_password = true
                $0.min_version = "1.3"
                $0.handshake_timeout = 2.5
            }
        )
        #expect(s.clientCAFile == "/ca.pem")
        #expect(s.crlFiles == ["/a.crl", "/b.der"])
        #expect(s.requireCertificate)
        #expect(s.identitySource == .sanURI)
        #expect(s.minimumVersion == .tls13)
        #expect(s.handshakeTimeout == .milliseconds(2500))
        #expect(s.clientCertificateRequirements == ClientCertificateRequirements(
            requireCertificate: true, requireClientIDMatch: true, requirePassword: true))
    }

    @Test func flagsOverrideTheFile() throws {
        let s = try TLSServerSettings.resolve(
            config { $0.ca = "/file-ca.pem" },
            overrides: .init(certificateFile: "/flag.pem", keyFile: "/flag.key", clientCAFile: "/flag-ca.pem",
                             crlFiles: ["/flag.crl"], requireCertificate: true)
        )
        #expect(s.certificateFile == "/flag.pem")
        #expect(s.keyFile == "/flag.key")
        #expect(s.clientCAFile == "/flag-ca.pem")
        #expect(s.crlFiles == ["/flag.crl"])
        #expect(s.requireCertificate)
    }

    @Test func developmentFallbackFillsMissingFiles() throws {
        let files = DevelopmentPKI.Files(caFile: "/d/ca.pem", certFile: "/d/server.pem", keyFile: "/d/server.key", created: false)
        let s = try TLSServerSettings.resolve(nil, fallback: files)
        #expect(s.certificateFile == "/d/server.pem")
        #expect(s.clientCAFile == "/d/ca.pem")
        #expect(!s.requireCertificate)
    }

    @Test(arguments: [
        "cert", "key", "require_certificate", "crl", "identity_from", "min_version", "handshake_timeout",
        "require_password", "require_client_id_match",
    ])
    func refusals(field: String) {
        let broken = config { c in
            switch field {
            case "cert": c.cert = nil
            case "key": c.key = nil
            case "require_certificate": c.require_certificate = true
            case "crl": c.crl = ["/x.crl"]
            case "identity_from": c.identity_from = "serial"
            case "min_version": c.min_version = "1.1"
            case "handshake_timeout": c.handshake_timeout = 0
            case "require_password": c.require_password = true
            default: c.require_client_id_match = true
            }
        }
        let error = #expect(throws: TLSSettingsError.self) {
            try TLSServerSettings.resolve(broken, keyPath: "listeners[0].tls")
        }
        #expect(error?.key == "listeners[0].tls.\(field)")
        #expect(error?.description.hasPrefix("listeners[0].tls.\(field)") == true)
    }

    @Test func minVersionSpellings() throws {
        for text in ["1.2", "TLSv1.2", "tls1.2"] {
            #expect(try TLSServerSettings.resolve(config { $0.min_version = text }).minimumVersion == .tls12)
        }
        #expect(try TLSServerSettings.resolve(config { $0.min_version = "TLSv1.3" }).minimumVersion == .tls13)
    }
}
