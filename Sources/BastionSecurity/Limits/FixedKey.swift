/// A fixed-size stand-in for client-chosen text (a user name, a client id, a user name with an
/// address) in failure counters: 16 bytes whatever the client sent, so a counter's memory does not
/// grow with the bytes an unauthenticated client sends. Derived with the process's randomly
/// seeded hasher (SipHash), so a client cannot aim two names at one key.
public struct FixedKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    public init(_ text: String) {
        self.init { $0.combine(text) }
    }

    public init(_ text: String, _ address: IPAddress) {
        self.init {
            $0.combine(text)
            $0.combine(address)
        }
    }

    private init(_ feed: (inout Hasher) -> Void) {
        var first = Hasher()
        first.combine(0x5A as UInt8)
        feed(&first)
        var second = Hasher()
        second.combine(0xA5 as UInt8)
        feed(&second)
        high = UInt64(bitPattern: Int64(first.finalize()))
        low = UInt64(bitPattern: Int64(second.finalize()))
    }
}
