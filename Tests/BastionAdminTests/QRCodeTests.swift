import Crypto
import Testing
@testable import BastionAdmin

/// The encoder against matrices from an independent implementation (python-qrcode 8.2, byte
/// mode, level M, mask forced), compared by SHA-256 of the row-major bits.
@Suite struct QRCodeTests {
    static let vectors: [(text: String, version: Int, masks: [String])] = [
        ("otpauth://totp/Bastion:admin?secret=IFBEGRCFIZDUQSKKJNGE2TSPKBIVEU2UKVLFOWCZLIZDGNBV&issuer=Bastion", 6,
         ["03f1cf686c77776c", "0213f77f5f7bc5af", "75ec9fdc3dcbda4f", "90d00138a1a46200", "f2b3c002fe94d26c", "30620bff7b64bf05",
          "cb3379346f76a8c7", "1627dc3e4838808d"]),
        (String((0..<150).map { Character(Unicode.Scalar(UInt8(32 + ($0 * 7) % 95))) }), 8,
         ["a1f13daa39ff9cdc", "aea74870a5e863fd", "76c7942aeaa04cb3", "b3dd06ee913c6ea0", "3b97fecd6f8982ca", "226b286d06364832",
          "b15fb83bd3ce77e8", "85610e22af725cfb"]),
        (String((0..<300).map { Character(Unicode.Scalar(UInt8(48 + ($0 * 13) % 75))) }), 13,
         ["1abd5f186cba2fe8", "68a027f7ee35e674", "df7e67dff0aca60f", "abccb0cd623e0dfc", "343b02ee93d8e5fd", "26fea91cd0fe8c91",
          "3dd91fc0dfc0ed0e", "f8564e9b7e240744"]),
    ]

    static func digest(_ code: QRCode) -> String {
        let bits = code.modules.map { $0 ? "1" : "0" }.joined()
        return SHA256.hash(data: Array(bits.utf8)).map { String(format: "%02x", $0) }.joined().prefix(16).description
    }

    @Test(arguments: 0..<3)
    func everyMaskMatchesAnIndependentEncoder(_ index: Int) throws {
        let vector = Self.vectors[index]
        for mask in 0..<8 {
            let code = try QRCode(text: vector.text, forceMask: mask)
            #expect(code.version == vector.version)
            #expect(code.size == vector.version * 4 + 17)
            #expect(Self.digest(code) == vector.masks[mask], "mask \(mask)")
        }
    }

    @Test func theChosenMaskHasTheLowestPenalty() throws {
        let text = Self.vectors[0].text
        let chosen = try QRCode(text: text)
        let penalties = try (0..<8).map { try QRCode(text: text, forceMask: $0).penalty }
        #expect(chosen.penalty == penalties.min())
        #expect(penalties[chosen.mask] == penalties.min())
    }

    @Test func finderPatternsSitInThreeCorners() throws {
        let code = try QRCode(text: "hello")
        #expect(code.version == 1)
        for (x, y) in [(0, 0), (code.size - 7, 0), (0, code.size - 7)] {
            #expect(code[x, y] && code[x + 6, y] && code[x, y + 6] && code[x + 3, y + 3])
            #expect(!code[x + 1, y + 1])
        }
    }

    @Test func tooLongIsRefused() {
        #expect(throws: QRCode.EncodeError.tooLong) { try QRCode(bytes: Array(repeating: 0x41, count: 2400)) }
    }

    @Test func svgHoldsOnlyTheDrawing() throws {
        let svg = try QRCode(text: "otpauth://totp/x?secret=AB<script>").svg()
        #expect(svg.hasPrefix("<svg "))
        #expect(!svg.contains("script"))
        #expect(!svg.contains("otpauth"))
    }
}
