import NIOCore

/// Request/reply over one shared inbox subscription: every request gets the reply subject
/// `<prefix><token>` and the response is matched by its token, so a request costs no SUB/UNSUB.
/// Event loop only.
final class RequestMux {
    let prefix: String
    var sid: UInt64?
    private var pending: [Substring: Pending] = [:]
    private var nextToken: UInt64 = 1

    private struct Pending {
        var promise: EventLoopPromise<NATSMessage>
        var timeout: Scheduled<Void>?
        var subject: String
    }

    init() {
        prefix = "_INBOX.\(Inbox.randomToken())."
    }

    /// Registers a request; returns its reply subject.
    func register(subject: String, promise: EventLoopPromise<NATSMessage>) -> (reply: String, token: String) {
        let token = String(nextToken, radix: 36)
        nextToken += 1
        pending[Substring(token)] = Pending(promise: promise, timeout: nil, subject: subject)
        return (prefix + token, token)
    }

    func setTimeout(_ token: String, _ scheduled: Scheduled<Void>) {
        pending[Substring(token)]?.timeout = scheduled
    }

    func fail(_ token: String, _ error: any Error) {
        guard let entry = pending.removeValue(forKey: Substring(token)) else { return }
        entry.timeout?.cancel()
        entry.promise.fail(error)
    }

    func responseReceived(_ message: NATSMessage) {
        guard message.subject.hasPrefix(prefix) else { return }
        let token = message.subject.dropFirst(prefix.utf8.count)
        guard let entry = pending.removeValue(forKey: token) else { return }
        entry.timeout?.cancel()
        if message.status?.code == NATSStatus.noResponders, message.payload.readableBytes == 0 {
            entry.promise.fail(NATSError.noResponders(subject: entry.subject))
        } else {
            entry.promise.succeed(message)
        }
    }

    func failAll(_ error: any Error) {
        let all = pending
        pending.removeAll()
        for entry in all.values {
            entry.timeout?.cancel()
            entry.promise.fail(error)
        }
    }
}

/// Inbox subjects: `_INBOX.` and 22 random base-62 characters (about 131 bits), which other
/// clients cannot guess to inject responses.
public enum Inbox {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func randomToken(length: Int = 22) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(length)
        for _ in 0..<length { bytes.append(alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func new() -> String { "_INBOX.\(randomToken())" }
}
