import Synchronization

/// The `seq` counter of one edge node session (NBIRTH to NDEATH). The inventory creates it at the
/// NBIRTH and ends it when the node goes offline or is born again; the connection that published the
/// NBIRTH keeps a reference, so its data messages — nearly all Sparkplug traffic — are checked here
/// without the inventory's lock.
public final class SparkplugEdgeSession: Sendable {
    /// Bit 9: ended; bit 8: a seq is known; bits 0-7: the latest seq.
    private let word: Atomic<UInt16>
    private static let ended: UInt16 = 0x200
    private static let known: UInt16 = 0x100

    init(seq: UInt64?) {
        word = Atomic(Self.encode(seq))
    }

    public var isLive: Bool { word.load(ordering: .acquiring) & Self.ended == 0 }

    func end() {
        word.bitwiseOr(Self.ended, ordering: .releasing)
    }

    public enum Step: Equatable, Sendable {
        case inOrder
        /// `seq` did not follow the previous message by one (mod 256); the session resynchronises on it.
        case gap(expected: UInt64)
        /// The session is over: the caller asks the inventory instead.
        case ended
    }

    /// Records `seq` as the session's latest and says whether it followed the previous one.
    public func advance(to seq: UInt64) -> Step {
        var current = word.load(ordering: .relaxed)
        while true {
            if current & Self.ended != 0 { return .ended }
            let (exchanged, original) = word.compareExchange(
                expected: current, desired: Self.encode(seq), ordering: .acquiringAndReleasing)
            if exchanged {
                guard original & Self.known != 0 else { return seq > 255 ? .gap(expected: 0) : .inOrder }
                let expected = UInt64(UInt8(truncatingIfNeeded: original) &+ 1)
                return seq == expected ? .inOrder : .gap(expected: expected)
            }
            current = original
        }
    }

    private static func encode(_ seq: UInt64?) -> UInt16 {
        guard let seq, seq <= 255 else { return 0 }
        return known | UInt16(seq)
    }
}
