import NIOCore
import Synchronization

/// Publishes on their way to the socket. Any thread encodes into one buffer under a short lock; the
/// event loop takes the whole buffer once per tick and writes it with one flush, so a burst of
/// publishes costs one write and one syscall instead of one per message.
///
/// The same buffer is the reconnect buffer: while disconnected publishes accumulate up to
/// `reconnectBufferSize` and go out right after the new connection has re-subscribed.
final class OutboundQueue: Sendable {
    enum Mode: Sendable, Equatable {
        case connected(writable: Bool)
        case disconnected
        case closed
    }

    private struct State {
        var buffer = ByteBuffer()
        var drainScheduled = false
        var mode = Mode.disconnected
        var maxPayload = 1_048_576
    }

    private let state = Mutex(State())
    let maxPendingBytes: Int
    let reconnectBufferSize: Int
    private static let initialCapacity = 16 * 1024

    init(maxPendingBytes: Int, reconnectBufferSize: Int) {
        self.maxPendingBytes = maxPendingBytes
        self.reconnectBufferSize = reconnectBufferSize
    }

    /// Encodes a publish. Returns true when the caller must schedule a drain on the event loop (the
    /// first publish since the last drain, while connected and writable).
    func publish(subject: String, reply: String?, headers: NATSHeaders?, payload: ByteBuffer) throws(NATSError) -> Bool {
        let headerBytes = headers.map(HeaderCoding.encodedLength) ?? 0
        return try state.withLock { (s: inout State) throws(NATSError) -> Bool in
            let size = payload.readableBytes + headerBytes
            guard size <= s.maxPayload else { throw .payloadTooLarge(size: size, limit: s.maxPayload) }
            let pending = s.buffer.readableBytes
            switch s.mode {
            case .closed:
                throw .connectionClosed
            case .disconnected:
                guard pending + size <= reconnectBufferSize else { throw .reconnectBufferFull(pendingBytes: pending) }
            case .connected:
                guard pending + size <= maxPendingBytes else { throw .outboundBufferFull(pendingBytes: pending) }
            }
            if s.buffer.capacity == 0 {
                s.buffer.reserveCapacity(max(Self.initialCapacity, size + 256))
            }
            try NATSProtocolEncoder.writePublish(subject: subject, reply: reply, headers: headers, payload: payload, to: &s.buffer)
            guard case .connected(writable: true) = s.mode, !s.drainScheduled else { return false }
            s.drainScheduled = true
            return true
        }
    }

    /// Takes everything encoded so far (event loop only). The next publish starts a new buffer, as
    /// the taken one now belongs to the channel.
    func take() -> ByteBuffer? {
        state.withLock { s in
            s.drainScheduled = false
            guard s.buffer.readableBytes > 0 else { return nil }
            defer { s.buffer = ByteBuffer() }
            return s.buffer
        }
    }

    /// The scheduled drain found the channel not writable (or gone): the next publish may schedule again.
    func drainSkipped() {
        state.withLock { $0.drainScheduled = false }
    }

    func setMode(_ mode: Mode) {
        state.withLock { s in
            s.mode = mode
            if mode == .closed { s.buffer = ByteBuffer() }
        }
    }

    func setMaxPayload(_ value: Int) {
        state.withLock { $0.maxPayload = value }
    }

    var pendingBytes: Int { state.withLock { $0.buffer.readableBytes } }
}
