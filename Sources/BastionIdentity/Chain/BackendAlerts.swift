import Logging
import NIOCore
import Synchronization

/// Reports backends that could not answer: a warning in the log and an alert (audit log and
/// `$SYS/bastion/alerts`), at most once per `interval` per backend so that a dead database and
/// a thousand reconnecting devices do not flood either; the rest is logged at debug level.
public final class BackendAlerts: Sendable {
    private let interval: TimeAmount
    private let raise: @Sendable (_ backend: String, _ reason: String) -> Void
    private let logger: Logger
    private let clock: @Sendable () -> NIODeadline
    private let lastRaised = Mutex<[String: NIODeadline]>([:])

    public init(interval: TimeAmount = .seconds(60), logger: Logger, clock: @escaping @Sendable () -> NIODeadline = { .now() },
                raise: @escaping @Sendable (_ backend: String, _ reason: String) -> Void) {
        self.interval = interval
        self.logger = logger
        self.clock = clock
        self.raise = raise
    }

    /// Ignores everything (tests, tools).
    public static func silent() -> BackendAlerts {
        BackendAlerts(logger: Logger(label: "bastion.identity", factory: { _ in SwiftLogNoOpLogHandler() })) { _, _ in }
    }

    public func unavailable(_ backend: String, reason: String) {
        let now = clock()
        let due = lastRaised.withLock { last -> Bool in
            if let previous = last[backend], now - previous < interval { return false }
            last[backend] = now
            return true
        }
        guard due else {
            logger.debug("identity backend unavailable", metadata: ["backend": "\(backend)", "reason": "\(reason)"])
            return
        }
        logger.warning("identity backend unavailable; its logins are refused (fail closed)", metadata: [
            "backend": "\(backend)", "reason": "\(reason)",
        ])
        raise(backend, reason)
    }

    /// A backend whose queue is full: logged, not alerted (load, not failure).
    public func busy(_ backend: String) {
        logger.notice("identity backend busy; login refused with server busy", metadata: ["backend": "\(backend)"])
    }
}
