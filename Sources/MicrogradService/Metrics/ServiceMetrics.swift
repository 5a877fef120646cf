import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The service's Prometheus metrics: `http_requests_total{method,route,status}`,
/// `http_request_duration_seconds{route}` (histogram) and `graph_nodes` (histogram), in the text exposition format.
///
/// Recording takes no lock and touches no memory another thread writes: each thread counts into its own shard
/// (found through one process-wide thread-specific key), and a scrape sums the shards. A shared lock (or the
/// Prometheus library's locked histogram) per request was contended by every worker thread. Counts are exact:
/// every event lands in exactly one shard; a scrape taken while requests finish sees each of them either whole
/// in every series it belongs to, or not yet, apart from the duration sums.
public final class ServiceMetrics: Sendable {
    /// Upper bounds of `http_request_duration_seconds`, in nanoseconds (100 us ... 10 s).
    static let durationBuckets: [UInt64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]
    /// Upper bounds of `graph_nodes`.
    static let nodeBuckets: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]

    /// Distinguishes this instance's shards in a thread's table (several services may live in one process, e.g. in tests).
    private let instance: UInt64
    private let shards = Mutex<[Shard]>([])

    public init() {
        instance = Self.instances.wrappingAdd(1, ordering: .relaxed).newValue
    }

    private static let instances = Atomic<UInt64>(0)

    /// One finished request: `route` is the matched route pattern (or "unmatched"), never the raw path,
    /// so a client cannot blow up the label space.
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordRequest(route: route, method: method, status: status,
                      nanoseconds: UInt64(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    /// The same with the duration in nanoseconds (`Duration.components` is Int128 arithmetic, ~190 instructions).
    public func recordRequest(route: String, method: String, status: Int, nanoseconds: UInt64) {
        shard().series(RequestKey(method: method, route: route, status: status)).record(nanoseconds)
    }

    /// The node count of an evaluated graph.
    public func recordGraph(nodes: Int) {
        shard().graphNodes.record(UInt64(clamping: nodes))
    }

    /// The Prometheus text exposition of every metric, series in a stable (sorted) order.
    public func exposition() -> [UInt8] {
        var requests: [RequestKey: UInt64] = [:]
        var durations: [String: HistogramSnapshot] = [:]
        var nodes = HistogramSnapshot(bucketCount: Self.nodeBuckets.count)
        for shard in shards.withLock({ $0 }) {
            for (key, series) in shard.allSeries() {
                let snapshot = series.snapshot()
                requests[key, default: 0] += snapshot.count
                durations[key.route, default: HistogramSnapshot(bucketCount: Self.durationBuckets.count)].add(snapshot)
            }
            nodes.add(shard.graphNodes.snapshot())
        }

        var out: [UInt8] = []
        out.append(contentsOf: "# TYPE http_requests_total counter\n".utf8)
        for (key, count) in requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out.append(contentsOf: #"http_requests_total{method="\#(key.method)",route="\#(key.route)",status="\#(key.status)"} \#(count)"#.utf8)
            out.append(UInt8(ascii: "\n"))
        }
        out.append(contentsOf: "# TYPE http_request_duration_seconds histogram\n".utf8)
        for (route, histogram) in durations.sorted(by: { $0.key < $1.key }) {
            histogram.emit(
                name: "http_request_duration_seconds", labels: #"route="\#(route)""#,
                bounds: Self.durationBuckets.map(Self.seconds), sum: Self.seconds(histogram.sum), into: &out)
        }
        out.append(contentsOf: "# TYPE graph_nodes histogram\n".utf8)
        nodes.emit(name: "graph_nodes", labels: "", bounds: Self.nodeBuckets.map { "\(Double($0))" }, sum: "\(Double(nodes.sum))", into: &out)
        return out
    }

    /// Nanoseconds as decimal seconds, trailing zeros trimmed but one kept after the point ("0.00025", "1.0").
    static func seconds(_ nanoseconds: UInt64) -> String {
        var fraction = String(nanoseconds % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.count > 1 && fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(nanoseconds / 1_000_000_000).\(fraction)"
    }

    /// This thread's shard of this instance, created (and registered for scrapes) on the thread's first event.
    private func shard() -> Shard {
        let table = ThreadShards.current()
        if table.lastInstance == instance, let shard = table.lastShard { return shard }
        let shard = table.shards[instance] ?? {
            let shard = Shard()
            table.shards[instance] = shard
            shards.withLock { $0.append(shard) }
            return shard
        }()
        table.lastInstance = instance
        table.lastShard = shard
        return shard
    }
}

struct RequestKey: Hashable {
    var method: String
    var route: String
    var status: Int
}

/// One thread's counts. Only its thread adds series and counts; a scrape reads them. The series table is replaced
/// under `lock` (rarely: once per new method, route and status) and read by its own thread without it.
private final class Shard: @unchecked Sendable {
    private var table: [RequestKey: Histogram] = [:]
    private let lock = Mutex(())
    let graphNodes = Histogram(bounds: ServiceMetrics.nodeBuckets)

    /// The few series a thread records into most go through `recent`, compared without hashing (small Strings
    /// compare as two words); hashing the key was ~500 instructions a request.
    private var recent: [(key: RequestKey, series: Histogram)] = []
    private var nextRecent = 0

    func series(_ key: RequestKey) -> Histogram {
        for entry in recent where entry.key == key { return entry.series }
        let series = table[key] ?? {
            let series = Histogram(bounds: ServiceMetrics.durationBuckets)
            lock.withLock { _ in table[key] = series }
            return series
        }()
        if recent.count < 4 {
            recent.append((key, series))
        } else {
            recent[nextRecent] = (key, series)
            nextRecent = (nextRecent + 1) % 4
        }
        return series
    }

    func allSeries() -> [RequestKey: Histogram] {
        lock.withLock { _ in table }
    }
}

/// A histogram written by one thread: per-bucket counts (not cumulative; the last one is +Inf) and the sum,
/// as relaxed atomics so a scrape from another thread reads whole values.
private final class Histogram: @unchecked Sendable {
    private let bounds: [UInt64]
    private let counts: UnsafeMutablePointer<Atomic<UInt64>>
    private let sum = Atomic<UInt64>(0)

    init(bounds: [UInt64]) {
        self.bounds = bounds
        counts = .allocate(capacity: bounds.count + 1)
        for index in 0...bounds.count { (counts + index).initialize(to: Atomic(0)) }
    }

    deinit {
        counts.deinitialize(count: bounds.count + 1)
        counts.deallocate()
    }

    func record(_ value: UInt64) {
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        counts[index].wrappingAdd(1, ordering: .relaxed)
        sum.wrappingAdd(value, ordering: .relaxed)
    }

    func snapshot() -> HistogramSnapshot {
        var snapshot = HistogramSnapshot(bucketCount: bounds.count)
        for index in 0...bounds.count { snapshot.counts[index] = counts[index].load(ordering: .relaxed) }
        snapshot.sum = sum.load(ordering: .relaxed)
        return snapshot
    }
}

/// Summed histogram counts; the count is the sum of the buckets, so `+Inf` and `_count` always agree.
private struct HistogramSnapshot {
    var counts: [UInt64]
    var sum: UInt64 = 0

    init(bucketCount: Int) { counts = Array(repeating: 0, count: bucketCount + 1) }

    var count: UInt64 { counts.reduce(0, &+) }

    mutating func add(_ other: HistogramSnapshot) {
        for index in counts.indices { counts[index] &+= other.counts[index] }
        sum &+= other.sum
    }

    /// Prometheus text: cumulative `_bucket` lines, `+Inf`, `_sum`, `_count`.
    func emit(name: String, labels: String, bounds: [String], sum: String, into out: inout [UInt8]) {
        let prefix = labels.isEmpty ? "" : labels + ","
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative &+= counts[index]
            out.append(contentsOf: "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n".utf8)
        }
        out.append(contentsOf: "\(name)_bucket{\(prefix)le=\"+Inf\"} \(count)\n".utf8)
        out.append(contentsOf: "\(name)_sum\(braced) \(sum)\n".utf8)
        out.append(contentsOf: "\(name)_count\(braced) \(count)\n".utf8)
    }
}

/// The calling thread's shards, one per `ServiceMetrics` instance that it recorded into, behind one process-wide
/// thread-specific key. The table is released when its thread exits; the shards live on in their instance.
private final class ThreadShards {
    var shards: [UInt64: Shard] = [:]
    /// A process usually has one service: its shard without a lookup.
    var lastInstance: UInt64 = 0
    var lastShard: Shard?

    static func current() -> ThreadShards {
        if let stored = pthread_getspecific(key) {
            return Unmanaged<ThreadShards>.fromOpaque(stored).takeUnretainedValue()
        }
        let table = ThreadShards()
        pthread_setspecific(key, Unmanaged.passRetained(table).toOpaque())
        return table
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { stored in
            guard let stored else { return }
            Unmanaged<ThreadShards>.fromOpaque(stored).release()
        }
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()
}
