import NIOCore

/// What a connection writes between two flushes. Control packets and PUBLISH headers are encoded
/// back to back into one buffer (one allocation per flush rather than per packet); each PUBLISH
/// payload stays the shared buffer it arrived in and is written right after its header, so it is
/// never copied per subscriber. Slices of the buffer are taken only when draining, after which it
/// is never written again.
struct OutboundBatch {
    private struct Segment {
        /// Where this packet's encoded bytes end in `arena`.
        var end: Int
        var payload: ByteBuffer
    }

    private var arena: ByteBuffer?
    private var segments: [Segment] = []

    var isEmpty: Bool { segments.isEmpty && (arena?.readableBytes ?? 0) == 0 }

    /// Encodes into the batch; `capacity` is an upper bound of the bytes `encode` writes.
    mutating func encode<R>(capacity: Int, allocator: ByteBufferAllocator, _ encode: (inout ByteBuffer) -> R) -> R {
        if arena == nil { arena = allocator.buffer(capacity: max(capacity, 512)) }
        arena!.reserveCapacity(minimumWritableBytes: capacity)
        return encode(&arena!)
    }

    /// Marks the end of a PUBLISH header whose payload follows it on the wire.
    mutating func attach(payload: ByteBuffer) {
        guard let arena, payload.readableBytes > 0 else { return }
        segments.append(Segment(end: arena.writerIndex, payload: payload))
    }

    /// Everything in one buffer, for TLS: the payload is encrypted per connection anyway, and one
    /// write becomes one TLS record instead of two small records per message.
    mutating func drainCoalesced(allocator: ByteBufferAllocator, _ write: (ByteBuffer) -> Void) {
        guard arena != nil else { return }
        if segments.isEmpty { return drain(write) }
        var parts: [ByteBuffer] = []
        parts.reserveCapacity(segments.count * 2 + 1)
        drain { parts.append($0) }
        var joined = allocator.buffer(capacity: parts.reduce(0) { $0 + $1.readableBytes })
        for var part in parts { joined.writeBuffer(&part) }
        write(joined)
    }

    /// Hands every buffer to `write`, in order, and starts a new batch.
    mutating func drain(_ write: (ByteBuffer) -> Void) {
        guard let arena else { return }
        var from = arena.readerIndex
        for segment in segments {
            if segment.end > from, let header = arena.getSlice(at: from, length: segment.end - from) { write(header) }
            write(segment.payload)
            from = segment.end
        }
        if arena.writerIndex > from, let tail = arena.getSlice(at: from, length: arena.writerIndex - from) { write(tail) }
        segments.removeAll(keepingCapacity: true)
        self.arena = nil
    }
}
