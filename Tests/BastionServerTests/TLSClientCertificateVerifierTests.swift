import BastionSecurity
import Foundation
import Testing
import X509

@Suite("Client certificate verification")
struct TLSClientCertificateVerifierTests {
    let ca: TestCA

    init() throws {
        ca = try TestCA()
    }

    func verifier(
        _ source: CertificateIdentitySource = .commonName,
        crls: [CertificateRevocationList] = [],
        roots: [Certificate]? = nil
    ) -> ClientCertificateVerifier {
        ClientCertificateVerifier(
            trustRoots: roots ?? [ca.certificate],
            revocationLists: crls.map { TrustedRevocationList(list: $0, signer: ca.certificate) },
            identitySource: source
        )
    }

    func rejection(_ result: Result<ClientCertificateInfo, ClientCertificateRejection>) -> ClientCertificateRejection? {
        if case .failure(let r) = result { return r }
        return nil
    }

    @Test func goodCertificateIsAcceptedWithCommonNameIdentity() async throws {
        let leaf = try ca.client("sensor-7")
        let result = await verifier().verify(presented: [leaf.certificate], at: TestCA.now)
        let info = try result.get()
        #expect(info.identity == "sensor-7")
        #expect(info.commonName == "sensor-7")
        #expect(info.serialNumber == leaf.certificate.serialNumber.hexString)
        #expect(info.subject == "CN=sensor-7")
        #expect(info.issuer == "CN=Test CA,O=Bastion")
    }

    @Test(arguments: [
        (CertificateIdentitySource.sanDNS, "plc-4.plant.example"),
        (.sanURI, "urn:device:plc-4"),
        (.sanEmail, "ops@plant.example"),
    ])
    func identityFromSubjectAlternativeName(source: CertificateIdentitySource, expected: String) async throws {
        let leaf = try ca.client(
            "ignored-cn",
            names: ["DNS:plc-4.plant.example", "URI:urn:device:plc-4", "email:ops@plant.example"]
        )
        let info = try await verifier(source).verify(presented: [leaf.certificate], at: TestCA.now).get()
        #expect(info.identity == expected)
        #expect(info.identitySource == source)
    }

    @Test func missingIdentityFieldIsRejected() async throws {
        let leaf = try ca.client("only-cn")
        let r = rejection(await verifier(.sanEmail).verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "no_identity")
    }

    @Test func foreignCAIsRejected() async throws {
        let foreign = try TestCA(name: "Test CA")  // same name, different key
        let leaf = try foreign.client()
        let r = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "unknown_ca")
    }

    @Test func expiredCertificateIsRejected() async throws {
        let leaf = try ca.client(notBefore: TestCA.now - 86_400 * 10, notAfter: TestCA.now - 86_400)
        let r = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "expired")
        #expect(r?.description.contains("CN=sensor-1") == true)
    }

    @Test func notYetValidCertificateIsRejected() async throws {
        let leaf = try ca.client(notBefore: TestCA.now + 86_400, notAfter: TestCA.now + 86_400 * 10)
        let r = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "not_yet_valid")
    }

    @Test func certificateWithoutExtendedKeyUsageIsRejected() async throws {
        let leaf = try ca.client(extendedKeyUsage: nil)
        let r = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "no_client_auth")
    }

    @Test func serverOnlyCertificateIsRejected() async throws {
        let leaf = try ca.client(extendedKeyUsage: [.serverAuth])
        let r = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r?.code == "no_client_auth")
    }

    @Test func revokedCertificateIsRejectedAndOthersAreNot() async throws {
        let revoked = try ca.client("gone")
        let kept = try ca.client("kept")
        let crl = try ca.crl(revoking: [revoked.certificate.serialNumber])
        let v = verifier(crls: [crl])
        let r = rejection(await v.verify(presented: [revoked.certificate], at: TestCA.now))
        #expect(r?.code == "revoked")
        #expect(r?.description.contains(revoked.certificate.serialNumber.hexString) == true)
        #expect(try await v.verify(presented: [kept.certificate], at: TestCA.now).get().identity == "kept")
    }

    @Test func crlFromAnotherCAHasNoEffect() async throws {
        let leaf = try ca.client("sensor-1", serial: 4242)
        let other = try TestCA(name: "Other CA")
        let crl = try other.crl(revoking: [Certificate.SerialNumber(4242)])
        let v = ClientCertificateVerifier(
            trustRoots: [ca.certificate, other.certificate],
            revocationLists: [TrustedRevocationList(list: crl, signer: other.certificate)],
            identitySource: .commonName
        )
        #expect(try await v.verify(presented: [leaf.certificate], at: TestCA.now).get().identity == "sensor-1")
    }

    @Test func chainThroughIntermediateIsAcceptedAndRevocationOfIntermediateApplies() async throws {
        let ca = try TestCA(name: "Root", maxPathLength: nil)
        func verifier(crls: [CertificateRevocationList] = []) -> ClientCertificateVerifier {
            ClientCertificateVerifier(
                trustRoots: [ca.certificate],
                revocationLists: crls.map { TrustedRevocationList(list: $0, signer: ca.certificate) },
                identitySource: .commonName
            )
        }
        let intermediate = try ca.intermediate()
        let leaf = try intermediate.client("deep")
        let info = try await verifier().verify(presented: [leaf.certificate, intermediate.certificate], at: TestCA.now).get()
        #expect(info.identity == "deep")
        // Without the intermediate the chain cannot be built.
        let r1 = rejection(await verifier().verify(presented: [leaf.certificate], at: TestCA.now))
        #expect(r1?.code == "unknown_ca")
        // Revoking the intermediate at the root revokes everything below it.
        let crl = try ca.crl(revoking: [intermediate.certificate.serialNumber])
        let r2 = rejection(
            await verifier(crls: [crl]).verify(presented: [leaf.certificate, intermediate.certificate], at: TestCA.now)
        )
        #expect(r2?.code == "revoked")
    }

    @Test func emptyChainIsMissing() async {
        #expect(rejection(await verifier().verify(presented: [], at: TestCA.now)) == .missing)
    }
}
