/// Counts events per key in a sliding time window, exactly, in bounded memory: a key keeps only
/// the times of its last `threshold` events, which is all that is needed to know whether
/// `threshold` events fell within the window. The number of keys is capped by count and by
/// bytes (keys should be fixed-size, see `FixedKey`); the least recently seen keys are forgotten
/// first. Pure value; the shared trackers wrap it in a lock.
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

    public init(threshold: Int, window: Duration, maximumKeys: Int = 65_536, maximumBytes: Int = .max) {
        self.threshold = max(1, threshold)
        self.window = window
        let perKey = Self.bytes(perKeyWithThreshold: max(1, threshold))
        self.maximumKeys = max(1, min(maximumKeys, maximumBytes / perKey))
    }

    public var count: Int { entries.count }

    /// Memory held, estimated from the entry layout (key, times, dictionary slot).
    public var approximateBytes: Int { entries.count * Self.bytes(perKeyWithThreshold: threshold) }

    static func bytes(perKeyWithThreshold threshold: Int) -> Int {
        MemoryLayout<Key>.stride + MemoryLayout<Entry>.stride + 32 + threshold * MemoryLayout<MonotonicInstant>.stride + 16
    }

    /// The number of events of `key` within the window, without recording one.
    public func count(_ key: Key, now: MonotonicInstant) -> Int {
        guard let entry = entries[key] else { return 0 }
        let cutoff = now - window
        return entry.times.reduce(0) { $0 + ($1 > cutoff ? 1 : 0) }
    }

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
