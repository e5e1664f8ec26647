@testable import BastionNATS
import Crypto
import Foundation
import Testing

// Vectors made with Python's cryptography (Ed25519) and base64/binascii.crc_hqx, independently of
// this implementation; the first seed is the example of the NATS documentation.
@Suite("NKeys")
struct NKeyTests {
    @Test(arguments: [
        ("SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY", "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"),
        ("SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y", "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK"),
        ("SUAJ2YNRTXX72WTAXKCEV5ES5QWMIRCJYVUXWMTJDFYDXLADDSXH6YALCA", "UDLVVGABQKYQVN6VJP7NHSLEA45A5YLS6PNKMIZFV4BBU2HXA5IRUVAL"),
    ])
    func publicKeyFromSeed(seed: String, publicKey: String) throws {
        #expect(try NKeyPair(seed: seed).publicKey == publicKey)
    }

    @Test(arguments: [
        ("SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y", "_-TChD8SKwCUsrEs3Xep0TwnlZ4ssoy_IoUTokz46kzES8hkAnQSHb7YoFrv6uOwQvgAzJMfFJdiM3lrYFIOAA"),
        ("SUAJ2YNRTXX72WTAXKCEV5ES5QWMIRCJYVUXWMTJDFYDXLADDSXH6YALCA", "nAkPBayMVSYOWJSRjX510Hb5Y5PyXuT_6yKsP7EJteJA58RwOiZTdsrqqHvtl60t4_8Xa0KAqvK2pKkOUeKKAQ"),
    ])
    func signatureOfNonce(seed: String, signature: String) throws {
        // Ed25519 signatures are deterministic, so they match byte for byte.
        #expect(try NKeyPair(seed: seed).sign(nonce: "nonce-Xy12_ab") == signature)
    }

    @Test func rejectsBadSeeds() {
        let good = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
        var flipped = Array(good)
        flipped[20] = flipped[20] == "A" ? "B" : "A"
        for bad in [String(flipped), "SUACSSL3", "not base32!", "",
                    // A public key is not a seed.
                    "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"] {
            #expect(throws: NATSError.self) { try NKeyPair(seed: bad) }
        }
    }

    @Test func readsCredsFile() throws {
        let path = NSTemporaryDirectory() + "nkey-\(UUID().uuidString).creds"
        try """
        -----BEGIN USER NKEY SEED-----
        SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY
        ------END USER NKEY SEED------
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try NKeyPair(seedFile: path).publicKey == "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")
        #expect(throws: NATSError.credentialsUnreadable(path: path + ".missing")) { try NKeyPair(seedFile: path + ".missing") }
    }

    @Test func base32AndCRC() {
        #expect(Base32.encode(Array("foobar".utf8)) == "MZXW6YTBOI")
        #expect(Base32.decode("MZXW6YTBOI") == Array("foobar".utf8))
        // CRC-16/XMODEM check value.
        #expect(CRC16.checksum(Array("123456789".utf8)) == 0x31C3)
    }
}
