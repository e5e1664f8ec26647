import CoreMetrics
import Prometheus
import Synchronization

/// The process's Prometheus registry and the one-time swift-metrics bootstrap. `MetricsSystem`
/// may be bootstrapped once per process; `bootstrapOnce()` may be called any number of times.
public enum MetricsBootstrap {
    /// The registry `/metrics` renders; every swift-metrics handle made through `MetricsSystem`
    /// (ours and libraries') lands here after `bootstrapOnce()`.
    public static let registry = PrometheusCollectorRegistry()

    private static let done = Mutex(false)

    /// Bootstraps `MetricsSystem` with a Prometheus factory on `registry`; later calls do nothing.
    /// Returns true for the call that did it.
    @discardableResult
    public static func bootstrapOnce() -> Bool {
        done.withLock { done in
            guard !done else { return false }
            done = true
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            return true
        }
    }
}
