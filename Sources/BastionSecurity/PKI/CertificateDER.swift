import SwiftASN1
import X509

/// DER conversions for code that hands certificates between swift-certificates and the TLS stack.
public enum CertificateDER {
    public static func parse(_ bytes: [UInt8]) throws -> Certificate {
        try Certificate(derEncoded: bytes)
    }

    public static func serialize(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }
}
