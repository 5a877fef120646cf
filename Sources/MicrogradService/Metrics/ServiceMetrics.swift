import CoreMetrics
import Prometheus
import Synchronization

/// The service's Prometheus metrics, recorded through swift-metrics into this instance's own registry
/// (not the global bootstrap, so several services, e.g. in tests, never mix their counts).
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    private struct RequestKey: Hashable {
        var route: String
        var status: Int
    }

    /// Counters and timers are looked up once per (route, status): the registry's own lookup takes a lock
    /// and hashes the labels, which would be a measurable share of a small request.
    private let requestCounters = Mutex([RequestKey: CoreMetrics.Counter]())
    private let latencyTimers = Mutex([String: CoreMetrics.Timer]())
    private let graphNodes: CoreMetrics.Recorder

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["http_request_duration_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        factory.valueHistogramBuckets["graph_nodes"] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]
        self.factory = factory
        graphNodes = Recorder(label: "graph_nodes", dimensions: [], aggregate: true, factory: factory)
    }

    /// One finished request: `route` is the matched route pattern (or "unmatched"), never the raw path,
    /// so a client cannot blow up the label space.
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let counter = requestCounters.withLock { counters in
            let key = RequestKey(route: method + " " + route, status: status)
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "http_requests_total",
                dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timer = latencyTimers.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = Timer(label: "http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            timers[route] = timer
            return timer
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The node count of an evaluated graph.
    public func recordGraph(nodes: Int) {
        graphNodes.record(nodes)
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
