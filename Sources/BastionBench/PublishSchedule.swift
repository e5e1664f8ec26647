/// Fixed-rate schedule for one publisher: message `k` (0-based) is due at
/// `start + k / rate`. A publisher that falls behind catches up in bursts rather than silently
/// lowering its rate, so the achieved rate shows when the broker (or the generator) could not
/// keep up. A rate of `nil` means "as fast as the connection accepts".
struct PublishSchedule: Sendable, Equatable {
    let startNanos: UInt64
    /// Messages per second for this publisher; nil for unpaced.
    let rate: Double?

    init(startNanos: UInt64, rate: Double?) {
        self.startNanos = startNanos
        self.rate = rate.flatMap { $0 > 0 ? $0 : nil }
    }

    /// How many messages should have been sent by `now` in total.
    func expected(at now: UInt64) -> Int {
        guard let rate else { return Int.max }
        guard now >= startNanos else { return 0 }
        let elapsed = Double(now - startNanos) / 1e9
        // The first message is due at the start itself.
        return Int((elapsed * rate).rounded(.down)) + 1
    }

    /// Messages due now given `sent` already sent; `Int.max` when unpaced.
    func due(at now: UInt64, sent: Int) -> Int {
        let expected = expected(at: now)
        guard expected != Int.max else { return Int.max }
        return max(0, expected - sent)
    }

    /// Publishers of one run start at staggered offsets within one interval so their bursts do
    /// not all land on the broker at the same instant.
    static func staggeredStart(base: UInt64, index: Int, of count: Int, rate: Double?) -> UInt64 {
        guard let rate, rate > 0, count > 1 else { return base }
        let interval = 1e9 / rate
        return base + UInt64(interval * Double(index) / Double(count))
    }
}

/// The measured interval of a run: publishers start at `publishStart`, messages sent or
/// received before `measureStart` are warm-up, and publishing stops at `measureEnd`.
struct MeasurementWindow: Sendable, Equatable {
    let publishStart: UInt64
    let measureStart: UInt64
    let measureEnd: UInt64

    init(publishStart: UInt64, warmupNanos: UInt64, durationNanos: UInt64) {
        self.publishStart = publishStart
        self.measureStart = publishStart + warmupNanos
        self.measureEnd = measureStart + durationNanos
    }

    func contains(_ t: UInt64) -> Bool { t >= measureStart && t < measureEnd }
    var durationSeconds: Double { Double(measureEnd - measureStart) / 1e9 }
}
