import NIOCore

extension IPAddress {
    /// The peer address of a NIO channel as the limit and ban key, without going through text.
    public init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            self.init(ipv6Bytes: bytes)
        default:
            return nil
        }
    }
}
