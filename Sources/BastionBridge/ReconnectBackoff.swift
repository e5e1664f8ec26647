/// Delays between rounds of connection attempts: exponential from `initial` to `maximum`, each
/// drawn between half and all of the current step so that many bridges cut at once do not come
/// back at once.
public struct ReconnectBackoff: Sendable {
    public var initialMilliseconds: Int
    public var maximumMilliseconds: Int
    private var step = 0

    public init(initialMilliseconds: Int = 500, maximumMilliseconds: Int = 30_000) {
        self.initialMilliseconds = initialMilliseconds
        self.maximumMilliseconds = maximumMilliseconds
    }

    /// The next delay in milliseconds; `unit` is a uniform draw in 0..<1 (injected for tests).
    public mutating func next(unit: Double = Double.random(in: 0..<1)) -> Int {
        let ceiling = min(maximumMilliseconds, initialMilliseconds << min(step, 20))
        step += 1
        return ceiling / 2 + Int(Double(ceiling / 2) * unit)
    }

    /// After a connection that worked: the next failure starts small again.
    public mutating func reset() { step = 0 }
}
