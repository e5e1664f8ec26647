/// The servers to try: the configured ones first, then those the cluster advertised in INFO
/// `connect_urls`. Each attempt takes the next in turn, so a dead server is not retried before the
/// others were.
struct ServerPool: Sendable {
    private(set) var servers: [NATSServerURL]
    private var next = 0

    init(_ configured: [NATSServerURL]) {
        servers = []
        for s in configured where !servers.contains(s) { servers.append(s) }
    }

    /// Adds advertised `host:port` entries, keeping the scheme of the server that told us (a TLS
    /// cluster advertises TLS ports).
    mutating func learn(_ connectURLs: [String], requiresTLS: Bool) -> Bool {
        var added = false
        for entry in connectURLs {
            guard var url = try? NATSServerURL(entry) else { continue }
            url.requiresTLS = url.requiresTLS || requiresTLS
            let known = servers.contains { $0.host == url.host && $0.port == url.port }
            if !known {
                servers.append(url)
                added = true
            }
        }
        return added
    }

    mutating func nextServer() -> NATSServerURL {
        let server = servers[next % servers.count]
        next = (next + 1) % servers.count
        return server
    }

    var count: Int { servers.count }
}

/// Delay before reconnect attempt `n` (0-based, counted since the connection was lost): the first
/// round through the pool goes at once, later rounds back off exponentially to `maximum`, with
/// jitter so a cluster's clients do not come back in lockstep after a restart.
struct ReconnectBackoff: Sendable {
    var base: Duration
    var maximum: Duration

    /// `random` is a value in 0..<1, passed in so the computation is testable.
    func delay(attempt: Int, poolSize: Int, random: Double) -> Duration {
        let round = attempt / max(poolSize, 1)
        guard round > 0 else { return .zero }
        let exponent = min(round - 1, 20)
        let raw = base * (1 << exponent)
        let capped = min(raw, maximum)
        // Half fixed, half random: between 50% and 100% of the capped delay.
        return capped * (0.5 + 0.5 * random)
    }
}

/// Keep-alive: a PING every interval; too many unanswered ones mean the connection is stale.
struct PingTracker: Sendable {
    var maxOutstanding: Int
    private(set) var outstanding = 0

    init(maxOutstanding: Int) { self.maxOutstanding = maxOutstanding }

    enum Action: Equatable { case sendPing, closeStale }

    mutating func intervalElapsed() -> Action {
        if outstanding >= maxOutstanding { return .closeStale }
        outstanding += 1
        return .sendPing
    }

    /// Any PONG proves the server is alive.
    mutating func pongReceived() { outstanding = 0 }
}
