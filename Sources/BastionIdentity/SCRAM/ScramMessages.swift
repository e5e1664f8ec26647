#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a SCRAM message was refused before any credential was looked at.
enum ScramMessageError: Error, Equatable {
    case malformed(String)
    /// `p=…`: channel binding is not offered (MQTT has no standard binding to the TLS channel).
    case channelBindingRequested
    /// `a=…`: acting for another identity is not supported.
    case authorizationIdentity
    /// `m=…`: a mandatory extension we do not know.
    case mandatoryExtension
}

/// `client-first-message` (RFC 5802 §7): `gs2-header client-first-message-bare`.
struct ScramClientFirst: Equatable {
    static let maximumLength = 4096
    static let maximumUsernameLength = 256

    /// `n,,` or `y,,`, as sent (it comes back base64-encoded in the final message).
    let gs2Header: String
    let username: String
    let nonce: String
    /// `n=…,r=…[,ext]`, part of the AuthMessage.
    let bare: String

    init(_ bytes: [UInt8]) throws(ScramMessageError) {
        guard bytes.count <= Self.maximumLength, let text = String(validating: bytes, as: UTF8.self), !text.contains("\0") else {
            throw .malformed("not UTF-8 text of at most \(Self.maximumLength) bytes")
        }
        let parts = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("no GS2 header") }
        switch parts[0] {
        case "n", "y": break
        case let flag where flag.hasPrefix("p="): throw .channelBindingRequested
        default: throw .malformed("unknown channel-binding flag")
        }
        guard parts[1].isEmpty else { throw .authorizationIdentity }
        gs2Header = "\(parts[0]),,"
        bare = String(parts[2])
        let attributes = bare.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2 else { throw .malformed("expected n=USER,r=NONCE") }
        if attributes[0].hasPrefix("m=") { throw .mandatoryExtension }
        guard attributes[0].hasPrefix("n="), let name = Self.decodeSaslName(attributes[0].dropFirst(2)),
              !name.isEmpty, name.utf8.count <= Self.maximumUsernameLength
        else { throw .malformed("bad user name") }
        guard attributes[1].hasPrefix("r="), let nonce = Self.printable(attributes[1].dropFirst(2)) else {
            throw .malformed("bad nonce")
        }
        username = name
        self.nonce = nonce
    }

    /// `saslname` (RFC 5802 §5.1): `=2C` is `,`, `=3D` is `=`; any other `=` is an error.
    static func decodeSaslName(_ text: Substring) -> String? {
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "=" {
                let code = text[text.index(after: index)...].prefix(2)
                switch code {
                case "2C": out.append(",")
                case "3D": out.append("=")
                default: return nil
                }
                index = text.index(index, offsetBy: 3)
            } else {
                out.append(character)
                index = text.index(after: index)
            }
        }
        return out
    }

    static func encodeSaslName(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    /// A nonce: printable ASCII except `,`, not empty.
    static func printable(_ text: Substring) -> String? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ",") }) else { return nil }
        return String(text)
    }
}

/// `client-final-message` (RFC 5802 §7): `c=…,r=…[,ext],p=…`.
struct ScramClientFinal: Equatable {
    let channelBinding: String
    let nonce: String
    let proof: [UInt8]
    /// Everything before `,p=`, part of the AuthMessage.
    let withoutProof: String

    init(_ bytes: [UInt8]) throws(ScramMessageError) {
        guard bytes.count <= ScramClientFirst.maximumLength, let text = String(validating: bytes, as: UTF8.self) else {
            throw .malformed("not UTF-8 text of at most \(ScramClientFirst.maximumLength) bytes")
        }
        guard let proofStart = text.range(of: ",p=", options: .backwards) else { throw .malformed("no proof") }
        withoutProof = String(text[..<proofStart.lowerBound])
        let proofText = text[proofStart.upperBound...]
        guard !proofText.contains(","), let proof = Data(base64Encoded: String(proofText)) else { throw .malformed("proof is not base64") }
        self.proof = Array(proof)
        let attributes = withoutProof.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2, attributes[0].hasPrefix("c="), attributes[1].hasPrefix("r=") else {
            throw .malformed("expected c=…,r=…,p=…")
        }
        channelBinding = String(attributes[0].dropFirst(2))
        nonce = String(attributes[1].dropFirst(2))
        if attributes.dropFirst(2).contains(where: { $0.hasPrefix("m=") }) { throw .mandatoryExtension }
    }
}
