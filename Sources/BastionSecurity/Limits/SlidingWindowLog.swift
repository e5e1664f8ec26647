/// Counts events per key in a sliding time window, exactly, in bounded memory: a key keeps only
/// the times of its last `threshold` events, which is all that is needed to know whether
/// `threshold` events fell within the window. The number of keys is capped; the least recently
/// seen keys are forgotten first. Pure value; the shared trackers wrap it in a lock.
public struct SlidingWindowLog<Key: Hashable & Sendable>: Sendable {
    public let threshold: Int
    public let window: Duration
    public let maximumKeys: Int
    private var entries: [Key: Entry] = [:]

    private struct Entry: Sendable {
        /// Ring of the most recent event times, oldest at `next` once full.
        var times: [MonotonicInstant]
        var next = 0
        var lastSeen: MonotonicInstant
    }

    public init(threshold: Int, window: Duration, maximumKeys: Int = 65_536) {
        self.threshold = max(1, threshold)
        self.window = window
        self.maximumKeys = max(1, maximumKeys)
    }

    public var count: Int { entries.count }

    /// Records an event; returns the number of events of `key` within the window (capped at
    /// `threshold`). Reaching `threshold` means the limit was hit.
    public mutating func record(_ key: Key, now: MonotonicInstant) -> Int {
        if entries[key] == nil, entries.count >= maximumKeys { evict(now: now) }
        var entry = entries[key] ?? Entry(times: [], lastSeen: now)
        if entry.times.count < threshold {
            entry.times.append(now)
        } else {
            entry.times[entry.next] = now
            entry.next = (entry.next + 1) % threshold
        }
        entry.lastSeen = now
        let cutoff = now - window
        let inWindow = entry.times.reduce(0) { $0 + ($1 > cutoff ? 1 : 0) }
        entries[key] = entry
        return inWindow
    }

    /// Forgets a key (after it was punished, so the next offence starts counting afresh).
    public mutating func reset(_ key: Key) {
        entries[key] = nil
    }

    /// Drops keys with no event inside the window.
    public mutating func purge(now: MonotonicInstant) {
        let cutoff = now - window
        entries = entries.filter { $0.value.lastSeen > cutoff }
    }

    private mutating func evict(now: MonotonicInstant) {
        purge(now: now)
        guard entries.count >= maximumKeys else { return }
        // Still full of live keys: forget the least recently seen half.
        let ordered = entries.sorted { $0.value.lastSeen < $1.value.lastSeen }
        for (key, _) in ordered.prefix(max(1, entries.count / 2)) { entries[key] = nil }
    }
}
