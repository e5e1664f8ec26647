#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as a 128-bit value. IPv4 is stored in its IPv4-mapped IPv6 form
/// (::ffff:a.b.c.d), so a peer seen through a dual-stack socket and the same peer seen through an
/// IPv4 socket are one key for bans and per-address limits.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From an IPv4 address in host byte order (127.0.0.1 is 0x7F00_0001).
    public init(ipv4: UInt32) {
        self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(ipv4))
    }

    /// From the 16 bytes of an IPv6 address in network order.
    public init?(ipv6Bytes bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// Parses "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" and a bracketed "[2001:db8::1]".
    /// Zone ids ("fe80::1%eth0") are dropped. Anything else: nil.
    public init?(_ text: some StringProtocol) {
        var text = String(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        if text.contains(":") {
            var storage = in6_addr()
            guard inet_pton(AF_INET6, text, &storage) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &storage) { Array($0) }
            self.init(ipv6Bytes: bytes)
        } else {
            var storage = in_addr()
            guard inet_pton(AF_INET, text, &storage) == 1 else { return nil }
            self.init(ipv4: UInt32(bigEndian: storage.s_addr))
        }
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The IPv4 value in host byte order when this is an IPv4 address.
    public var ipv4: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    public var isLoopback: Bool {
        if let v4 = ipv4 { return v4 >> 24 == 127 }
        return high == 0 && low == 1
    }

    public var description: String {
        if let v4 = ipv4 {
            return "\(v4 >> 24).\(v4 >> 16 & 0xFF).\(v4 >> 8 & 0xFF).\(v4 & 0xFF)"
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
        }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(AF_INET6, raw.baseAddress, &out, socklen_t(out.count)) != nil
        }
        guard ok else { return "::" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// This address with every bit after the first `prefixLength` (of 128) cleared.
    func masked(to prefixLength: Int) -> IPAddress {
        let p = max(0, min(128, prefixLength))
        let highMask: UInt64 = p >= 64 ? ~0 : (p == 0 ? 0 : ~0 << (64 - UInt64(p)))
        let lowMask: UInt64 = p <= 64 ? 0 : (p == 128 ? ~0 : ~0 << (128 - UInt64(p)))
        return IPAddress(high: high & highMask, low: low & lowMask)
    }
}

/// An address block in CIDR notation ("10.0.0.0/8", "2001:db8::/32"); a single address is a /32
/// (IPv4) or /128 (IPv6) block.
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block.
    public let base: IPAddress
    /// Prefix length in the 128-bit space (an IPv4 /8 is 104).
    public let prefixLength: Int

    public init(_ address: IPAddress) {
        base = address
        prefixLength = 128
    }

    /// Parses an address or a CIDR block. Host bits set below the prefix are cleared.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPAddress(parts[0]) else { return nil }
        let full = address.isIPv4 ? 32 : 128
        var length = full
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...full).contains(n), parts[1].allSatisfy(\.isASCII) else { return nil }
            length = n
        }
        prefixLength = address.isIPv4 ? 96 + length : length
        base = address.masked(to: prefixLength)
    }

    public var isSingleAddress: Bool { prefixLength == 128 }

    public func contains(_ address: IPAddress) -> Bool {
        address.masked(to: prefixLength) == base
    }

    public var description: String {
        if isSingleAddress { return base.description }
        return "\(base)/\(base.isIPv4 ? prefixLength - 96 : prefixLength)"
    }
}
