import BastionSecurity
import Foundation
import Testing
import X509
import BastionTesting

@Suite("PKI: issuance, CRLs, the PKI directory")
struct PKITests {
    @Test func caProfile() throws {
        let ca = try TestCA(name: "Plant CA")
        let c = ca.certificate
        #expect(c.subject == c.issuer)
        #expect(try c.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try c.extensions.keyUsage?.keyCertSign == true)
        #expect(try c.extensions.keyUsage?.cRLSign == true)
        #expect(c.publicKey.isValidSignature(c.signature, for: c))
    }

    @Test func serverProfileHasServerAuthAndNames() throws {
        let ca = try TestCA()
        let leaf = try ca.server(names: ["localhost", "127.0.0.1", "IP:::1"])
        let c = leaf.certificate
        #expect(c.subject.commonName == "localhost")
        #expect(try c.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        #expect(try c.extensions.extendedKeyUsage?.contains(.clientAuth) == false)
        #expect(try c.extensions.basicConstraints == .notCertificateAuthority)
        let names = try #require(try c.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(.init(contentBytes: [127, 0, 0, 1]))))
        #expect(names.contains(.ipAddress(.init(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))))
        #expect(ca.certificate.publicKey.isValidSignature(c.signature, for: c))
        #expect(c.notValidAfter.timeIntervalSince(c.notValidBefore) <= 398 * 86_400)
    }

    @Test func clientProfileHasClientAuth() throws {
        let ca = try TestCA()
        let key = CertificateIssuer.newKey()
        let c = try CertificateIssuer.issueClient(
            commonName: "alice",
            publicKey: key.publicKey,
            issuer: ca.certificate,
            issuerKey: ca.key,
            now: TestCA.now
        )
        #expect(c.subject.commonName == "alice")
        #expect(try c.extensions.extendedKeyUsage?.contains(.clientAuth) == true)
        #expect((c.notValidAfter.timeIntervalSince(TestCA.now) / 86_400).rounded() == 365)
    }

    @Test func issuingWithTheWrongCAKeyIsRefused() throws {
        let ca = try TestCA()
        let other = CertificateIssuer.newKey()
        #expect(throws: PKIError.self) {
            try CertificateIssuer.issueClient(
                commonName: "x",
                publicKey: other.publicKey,
                issuer: ca.certificate,
                issuerKey: other,
                now: TestCA.now
            )
        }
    }

    @Test(arguments: [
        ("DNS:broker.example", SubjectAltName.Kind.dns, "broker.example"),
        ("broker.example", .dns, "broker.example"),
        ("10.1.2.3", .ip, "10.1.2.3"),
        ("::1", .ip, "::1"),
        ("IP:[fe80::1]", .ip, "fe80::1"),
        ("URI:urn:dev:1", .uri, "urn:dev:1"),
        ("email:a@b.example", .email, "a@b.example"),
    ])
    func subjectAltNameParsing(text: String, kind: SubjectAltName.Kind, value: String) throws {
        let san = try SubjectAltName(text)
        #expect(san.kind == kind)
        #expect(san.value == value)
    }

    @Test(arguments: ["IP:999.1.1.1", "bad name", "email:nobody", "URI:nocolon", "DNS:", "a..b"])
    func badSubjectAltNamesAreRefused(text: String) {
        #expect(throws: PKIError.self) { try SubjectAltName(text) }
    }

    @Test func serialHexRoundTrip() throws {
        let serial = Certificate.SerialNumber(bytes: [0x00, 0xAB, 0x01, 0xFF])
        #expect(serial.hexString == "AB01FF")
        #expect(Certificate.SerialNumber(hexString: "ab:01:ff") == serial)
        #expect(Certificate.SerialNumber(hexString: "0xAB01FF") == serial)
        #expect(Certificate.SerialNumber(hexString: "zz") == nil)
        let random = Certificate.SerialNumber()
        #expect(Certificate.SerialNumber(hexString: random.hexString) == random)
    }

    // MARK: CRL

    @Test func crlRoundTripsThroughDERAndPEM() throws {
        let ca = try TestCA()
        let revoked: [Certificate.SerialNumber] = [Certificate.SerialNumber(7), Certificate.SerialNumber(bytes: [0x80, 0x01])]
        let crl = try ca.crl(revoking: revoked)
        let fromDER = try CertificateRevocationList(derEncoded: crl.derBytes)
        #expect(fromDER == crl)
        let fromPEM = try CertificateRevocationList.parseFile(Array(crl.pemString.utf8), path: "test.pem")
        #expect(fromPEM == [crl])
        #expect(fromDER.issuer == ca.certificate.subject)
        #expect(fromDER.isRevoked(Certificate.SerialNumber(7)))
        #expect(fromDER.isRevoked(Certificate.SerialNumber(bytes: [0x80, 0x01])))
        #expect(!fromDER.isRevoked(Certificate.SerialNumber(8)))
        #expect(fromDER.isSigned(by: ca.certificate))
        #expect(fromDER.crlNumber == [1])
        // Serials are positive INTEGERs: a set high bit gets a 0x00 in front (02 03 00 80 01).
        let der = crl.derBytes
        #expect(der.indices.contains { i in Array(der[i..<min(i + 5, der.count)]) == [0x02, 0x03, 0x00, 0x80, 0x01] })
        #expect(fromDER.nextUpdate != nil)
    }

    @Test func crlSignatureIsCheckedAgainstTheIssuer() throws {
        let ca = try TestCA()
        let impostor = try TestCA(name: "Test CA")  // same name, other key
        let crl = try impostor.crl(revoking: [])
        #expect(!crl.isSigned(by: ca.certificate))
        #expect(crl.isSigned(by: impostor.certificate))
    }

    @Test func tamperedCRLFailsSignatureCheck() throws {
        let ca = try TestCA()
        var bytes = try ca.crl(revoking: [Certificate.SerialNumber(5)]).derBytes
        // Flip a byte inside the revoked serial (the INTEGER 5 is encoded 02 01 05).
        let position = try #require(bytes.indices.first { i in i + 2 < bytes.count && bytes[i] == 2 && bytes[i + 1] == 1 && bytes[i + 2] == 5 })
        bytes[position + 2] = 6
        let crl = try CertificateRevocationList(derEncoded: bytes)
        #expect(crl.isRevoked(Certificate.SerialNumber(6)))
        #expect(!crl.isSigned(by: ca.certificate))
    }

    @Test func garbageIsNotACRL() {
        #expect(throws: (any Error).self) { try CertificateRevocationList.parseFile([1, 2, 3], path: "x") }
        #expect(throws: PKIError.self) {
            try CertificateRevocationList.parseFile(Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8), path: "x")
        }
    }

    @Test func trustMaterialRefusesCRLsFromUnknownCAsAndWarnsWhenStale() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let ca = try TestCA()
        let other = try TestCA(name: "Other")
        try writeFile(ca.certificate.pem, to: dir.file("ca.pem"))
        try writeFile(other.crl(revoking: []).pemString, to: dir.file("other.crl"))
        #expect(throws: PKIError.self) {
            try ClientTrustMaterial.load(caFile: dir.file("ca.pem"), crlFiles: [dir.file("other.crl")], now: TestCA.now)
        }
        try PKIFiles.write(ca.crl(revoking: [], nextUpdateDays: -1).derBytes, to: dir.file("stale.der"), mode: 0o644, overwrite: true)
        let material = try ClientTrustMaterial.load(caFile: dir.file("ca.pem"), crlFiles: [dir.file("stale.der")], now: TestCA.now)
        #expect(material.revocationLists.count == 1)
        #expect(material.warnings.contains { $0.contains("past its next update") })
    }

    // MARK: Server credentials (refusals at startup)

    @Test func serverCredentialsRefuseGroupReadableKey() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let leaf = try TestCA().server()
        try writeFile(leaf.certificate.pem, to: dir.file("s.pem"))
        try writeFile(leaf.key.pem, to: dir.file("s.key"), mode: 0o640)
        let error = #expect(throws: PKIError.self) {
            try ServerCredentials.load(certificateFile: dir.file("s.pem"), keyFile: dir.file("s.key"), now: TestCA.now)
        }
        #expect(error?.kind == .keyPermissions)
        #expect(error?.message.contains("chmod 600 \(dir.file("s.key"))") == true)
        chmod(dir.file("s.key"), 0o600)
        let ok = try ServerCredentials.load(certificateFile: dir.file("s.pem"), keyFile: dir.file("s.key"), now: TestCA.now)
        #expect(ok.chain.count == 1)
    }

    @Test func serverCredentialsRefuseMismatchedKey() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let ca = try TestCA()
        let a = try ca.server()
        let b = try ca.server()
        try writeFile(a.certificate.pem, to: dir.file("a.pem"))
        try writeFile(b.key.pem, to: dir.file("b.key"), mode: 0o600)
        let error = #expect(throws: PKIError.self) {
            try ServerCredentials.load(certificateFile: dir.file("a.pem"), keyFile: dir.file("b.key"), now: TestCA.now)
        }
        #expect(error?.kind == .keyMismatch)
    }

    @Test func serverCredentialsRefuseExpiredCertificate() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let leaf = try TestCA().server(days: 10)
        try writeFile(leaf.certificate.pem, to: dir.file("s.pem"))
        try writeFile(leaf.key.pem, to: dir.file("s.key"), mode: 0o600)
        let error = #expect(throws: PKIError.self) {
            try ServerCredentials.load(certificateFile: dir.file("s.pem"), keyFile: dir.file("s.key"), now: TestCA.now + 11 * 86_400)
        }
        #expect(error?.kind == .expired)
        let soon = try ServerCredentials.load(certificateFile: dir.file("s.pem"), keyFile: dir.file("s.key"), now: TestCA.now)
        #expect(soon.warnings.contains { $0.contains("expires") })
    }

    @Test func missingFilesNameThePath() throws {
        let error = #expect(throws: PKIError.self) {
            try ServerCredentials.load(certificateFile: "/nonexistent/s.pem", keyFile: "/nonexistent/s.key", now: TestCA.now)
        }
        #expect(error?.message.contains("/nonexistent/s.key") == true)
    }

    // MARK: PKI directory

    @Test func pkiDirectoryLifecycle() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let pki = PKIDirectory(path: dir.file("pki"))
        let ca = try pki.initialize(now: TestCA.now)
        #expect(PKIFiles.mode(of: pki.caKeyFile) == 0o600)
        #expect(PKIFiles.mode(of: dir.file("pki")) == 0o700)
        #expect(throws: PKIError.self) { try pki.initialize(now: TestCA.now) }

        let server = try pki.issueServer(names: [SubjectAltName("localhost")], now: TestCA.now)
        #expect(PKIFiles.mode(of: server.keyFile) == 0o600)
        let client = try pki.issueClient(commonName: "sensor/1", now: TestCA.now)
        #expect(client.certificateFile.hasSuffix("clients/sensor_1.pem"))
        #expect(PKIFiles.mode(of: client.keyFile) == 0o600)
        #expect(throws: PKIError.self) { try pki.issueClient(commonName: "sensor/1", now: TestCA.now) }

        let clientCert = try #require(try PKIFiles.readCertificates(client.certificateFile, what: "test").first)
        #expect(clientCert.issuer == ca.subject)
        #expect(clientCert.serialNumber.hexString == client.serial)

        var index = try pki.readIndex()
        #expect(index.certificates.map(\.kind) == [.ca, .server, .client])

        if case .revoked(let entry) = try pki.revoke(serialHex: client.serial.lowercased(), now: TestCA.now) {
            #expect(entry.serial == client.serial)
        } else {
            Issue.record("first revoke should revoke")
        }
        if case .alreadyRevoked = try pki.revoke(serialHex: client.serial, now: TestCA.now) {} else {
            Issue.record("second revoke should report alreadyRevoked")
        }
        #expect(throws: PKIError.self) { try pki.revoke(serialHex: "0BADBEEF", now: TestCA.now) }
        index = try pki.readIndex()
        #expect(index.certificates.last?.revokedAt != nil)

        let crl = try #require(try CertificateRevocationList.parseFile(PKIFiles.read(pki.crlFile, what: "t"), path: pki.crlFile).first)
        #expect(crl.isRevoked(clientCert.serialNumber))
        #expect(crl.isSigned(by: ca))
        let before = try #require(crl.crlNumber)
        try pki.writeCRL(now: TestCA.now)
        let again = try #require(try CertificateRevocationList.parseFile(PKIFiles.read(pki.crlFile, what: "t"), path: pki.crlFile).first)
        #expect(try #require(again.crlNumber).last! > before.last!)
    }

    @Test func crlDistributionPointIsWrittenIntoIssuedCertificates() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let pki = PKIDirectory(path: dir.file("pki"))
        try pki.initialize(crlURL: "http://pki.example/crl.pem", now: TestCA.now)
        let issued = try pki.issueServer(names: [SubjectAltName("localhost")], now: TestCA.now)
        let cert = try #require(try PKIFiles.readCertificates(issued.certificateFile, what: "t").first)
        let ext = try #require(cert.extensions.first { $0.oid == [2, 5, 29, 31] })
        #expect(!ext.critical)
        // SEQUENCE { SEQUENCE { [0] { [0] { [6] "http://pki.example/crl.pem" } } } }
        let uri = Array("http://pki.example/crl.pem".utf8)
        #expect(Array(ext.value.suffix(uri.count + 2)) == [0x86, UInt8(uri.count)] + uri)
        #expect(Array(ext.value.prefix(8)) == [0x30, UInt8(uri.count + 8), 0x30, UInt8(uri.count + 6), 0xA0, UInt8(uri.count + 4), 0xA0, UInt8(uri.count + 2)])
        #expect(throws: PKIError.self) { try PKIDirectory(path: dir.file("other")).initialize(crlURL: "file:/x", now: TestCA.now) }
    }

    @Test func developmentPKIIsCreatedOnceAndReused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let first = try DevelopmentPKI.ensure(dataDir: dir.path, now: TestCA.now)
        #expect(first.created)
        #expect(PKIFiles.mode(of: first.keyFile) == 0o600)
        let credentials = try ServerCredentials.load(certificateFile: first.certFile, keyFile: first.keyFile, now: TestCA.now)
        let names = try #require(try credentials.chain[0].extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(.init(contentBytes: [127, 0, 0, 1]))))
        let certBefore = try PKIFiles.read(first.certFile, what: "t")

        let second = try DevelopmentPKI.ensure(dataDir: dir.path, now: TestCA.now + 86_400)
        #expect(!second.created)
        #expect(second == DevelopmentPKI.Files(caFile: first.caFile, certFile: first.certFile, keyFile: first.keyFile, created: false))
        #expect(try PKIFiles.read(first.certFile, what: "t") == certBefore)

        // Near expiry the server certificate is renewed under the same CA.
        let later = try DevelopmentPKI.ensure(dataDir: dir.path, now: TestCA.now + 380 * 86_400)
        #expect(later.created)
        #expect(try PKIFiles.read(first.certFile, what: "t") != certBefore)
    }
}
