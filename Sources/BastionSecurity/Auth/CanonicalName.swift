import Foundation

/// Client ids and user names in one canonical form, Unicode NFC. Swift compares Strings by
/// canonical equivalence while byte matchers (allowlist patterns, backends, the store) see code
/// units, so "é" precomposed and "e" + combining accent would be one session but two identities.
/// Normalising every name where it enters (CONNECT, configuration) makes both views agree.
/// Topic names are never normalised: MQTT matches them byte for byte (MQTT-4.7.3-4).
public enum CanonicalName {
    public static func nfc(_ name: String) -> String {
        // ASCII is already NFC: the common case costs one pass over the bytes.
        guard name.utf8.contains(where: { $0 >= 0x80 }) else { return name }
        return name.precomposedStringWithCanonicalMapping
    }
}
