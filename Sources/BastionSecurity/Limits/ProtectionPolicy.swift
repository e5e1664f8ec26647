/// Everything abuse protection is built from: connection limits (global and per listener, in
/// listener order), publish rates, bans and their back-off, failure and flapping thresholds,
/// configured bans and alert thresholds. Resolved from the configuration by the server.
public struct ProtectionPolicy: Sendable {
    public var connectionLimits = ConnectionLimits()
    /// Per listener: limits that replace the global connection thresholds, nil when none.
    public var listenerConnectionLimits: [ConnectionLimits?] = []
    public var publishRate = PublishRatePolicy()
    public var listenerPublishRates: [PublishRatePolicy?] = []
    public var banPolicy = BanPolicy()
    public var authFailures = AuthFailurePolicy()
    public var flapping = FlapPolicy()
    public var configuredBans: [(subject: BanSubject, note: String?)] = []
    public var alerts = AlertPolicy()

    public init() {}
}

/// The counters abuse protection reports to (the server's Prometheus metrics).
public protocol ProtectionMetrics: Sendable {
    func connectionRefused(_ reason: RefusalReason)
    func authFailed()
    func aclDenied(_ operation: AuditEvent.AuthorizationDenied.Operation)
    func limitReached(_ limit: AuditEvent.LimitReached.Limit)
    func publishThrottled()
    func alertRaised(_ kind: Alert.Kind)
    func banEvent(_ event: BanEvent, activeBans: Int)
    func setActiveBans(_ count: Int)
    func failureTracker(_ usage: (keys: Int, bytes: Int))
}

extension Alert {
    /// The JSON published on `$SYS/bastion/alerts` (the same fields as the audit `alert` record).
    public func payload(timestamp: Int64 = RFC3339.nowMilliseconds()) -> String {
        let record = AuditRecord(timestamp: timestamp, event: .alert(.init(self)))
        var line = record.jsonLine()
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }
}
