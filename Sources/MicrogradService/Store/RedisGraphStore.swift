import Dispatch
import Logging
import MicrogradGraph
import RedisClient
import Synchronization

/// The graph store shared by every replica pointed at one Redis: an id minted by one replica is read by any other,
/// "most recent" is the most recent across replicas, and registered graphs survive replica restarts.
///
/// Keys (`micrograd:v1:` is the schema version: a later encoding gets a new prefix and both can coexist):
/// - `micrograd:v1:eval:<id>`   an evaluated graph (``GraphCodec``), expiring after `ttl`
/// - `micrograd:v1:recent`      the id of the most recent evaluation, same expiry
/// - `micrograd:v1:graph:<key>` a registered graph by content hash, no expiry (kept until deleted)
///
/// Nothing is cached in this process: every read asks Redis, so a delete is seen by every replica at once.
/// When Redis cannot be reached (or the client's breaker is open after a recent failure) reads are `.unavailable`,
/// never `.absent`; a value under our keys that does not decode is `.unavailable` too (a clean 503 for that id).
public final class RedisGraphStore: GraphStore {
    public static let keyPrefix = "micrograd:v1:"
    public static let defaultTTL = Duration.seconds(3600)
    public static let defaultConnectTimeout = RedisConfiguration.defaultConnectTimeout
    public static let defaultCommandTimeout = RedisConfiguration.defaultCommandTimeout
    public let client: RedisClient
    public let ttl: Duration
    public let remembersMostRecent: Bool
    /// The largest encoded graph written (`--store-bytes`); Redis's own cap on a value is 512 MB.
    public let maxValueBytes: Int
    /// `ttl` in whole seconds (at least 1), as the `EX` argument of every evaluation's SETs.
    private let expirySeconds: [UInt8]
    private let statistics: RedisStatistics
    private let logger: Logger

    /// `url`: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
    public convenience init(
        url: String, connectTimeout: Duration = RedisConfiguration.defaultConnectTimeout,
        commandTimeout: Duration = RedisConfiguration.defaultCommandTimeout, ttl: Duration = defaultTTL,
        remembersMostRecent: Bool = true, maxValueBytes: Int = 256 << 20, logger: Logger = Logger(label: "micrograd")
    ) throws(RedisURLError) {
        var configuration = try RedisConfiguration(url: url)
        configuration.connectTimeout = connectTimeout
        configuration.commandTimeout = commandTimeout
        self.init(configuration: configuration, ttl: ttl, remembersMostRecent: remembersMostRecent,
                  maxValueBytes: maxValueBytes, logger: logger)
    }

    public init(
        configuration: RedisConfiguration, ttl: Duration = defaultTTL, remembersMostRecent: Bool = true,
        maxValueBytes: Int = 256 << 20, logger: Logger = Logger(label: "micrograd")
    ) {
        let statistics = RedisStatistics()
        self.statistics = statistics
        self.logger = logger
        self.client = RedisClient(configuration: configuration) { event in
            statistics.record(event)
            if case .stateChanged(let state, let reason) = event {
                if state == .available {
                    logger.notice("graph store available", metadata: ["store": "redis"])
                } else {
                    logger.warning("graph store unavailable", metadata: ["store": "redis", "reason": "\(reason)"])
                }
            }
        }
        self.ttl = ttl
        self.expirySeconds = Array(String(max(1, ttl.components.seconds)).utf8)
        self.remembersMostRecent = remembersMostRecent
        self.maxValueBytes = maxValueBytes
    }

    public func newEvaluationID() -> String { EvaluationID.random() }

    /// Evaluations are written by the Redis client's writer thread (group commit): a caller that can answer later
    /// does not hold its thread while Redis acknowledges.
    public var writesLater: Bool { true }

    public func putEvaluation(_ graph: EvaluatedGraph, id: String) -> StoreWrite {
        let outcome = Mutex<StoreWrite?>(nil)
        let done = DispatchSemaphore(value: 0)
        putEvaluation(graph, id: id) { write in
            outcome.withLock { $0 = write }
            done.signal()
        }
        done.wait()  // bounded by the client's connect and command timeouts
        return outcome.withLock { $0 }!
    }

    public func putEvaluation(_ graph: EvaluatedGraph, id: String, completion: @escaping @Sendable (StoreWrite) -> Void) {
        guard Self.isEvaluationID(id) else { return completion(.notStored(.unavailable(reason: "not an evaluation id"))) }
        let value = GraphCodec.encode(graph)
        guard value.count <= maxValueBytes else { return completion(.notStored(.tooLarge)) }
        var key = id
        let write = key.withUTF8 { id in
            value.withUnsafeBytes { value in
                Self.evaluationKeyPrefix.withUnsafeBytes { prefix in
                    expirySeconds.withUnsafeBytes { seconds in
                        var write = RedisCommands()
                        write.append(.init("SET"), .init(prefix, UnsafeRawBufferPointer(id)), .init(value), .init("EX"),
                                     .init(seconds))
                        return write
                    }
                }
            }
        }
        // Group commit: concurrent evaluations' writes go to Redis in one round trip, and only the last of them moves
        // `recent` (Benchmarks/redis-store/RESULTS.md). The outcome is known only once Redis answered.
        client.submit(EvaluationWrite(
            commands: write, id: id, remembersMostRecent: remembersMostRecent, expirySeconds: expirySeconds,
            completion: completion))
    }

    /// One evaluation's write: its `SET`, the `recent` one (built only if it is its round trip's last), and its
    /// completion, in one object (RedisSubmission).
    private final class EvaluationWrite: RedisSubmission {
        let commands: RedisCommands
        let id: String
        let hasLastWins: Bool
        let expirySeconds: [UInt8]
        let completion: @Sendable (StoreWrite) -> Void

        init(commands: RedisCommands, id: String, remembersMostRecent: Bool, expirySeconds: [UInt8],
             completion: @escaping @Sendable (StoreWrite) -> Void) {
            self.commands = commands
            self.id = id
            self.hasLastWins = remembersMostRecent
            self.expirySeconds = expirySeconds
            self.completion = completion
        }

        func lastWins() -> RedisCommands {
            var id = id, recent = RedisCommands()
            id.withUTF8 { id in
                RedisGraphStore.recentKey.withUnsafeBytes { key in
                    expirySeconds.withUnsafeBytes { seconds in
                        recent.append(.init("SET"), .init(key), .init(UnsafeRawBufferPointer(id)), .init("EX"), .init(seconds))
                    }
                }
            }
            return recent
        }

        func finished(_ outcome: Result<RedisReplies, RedisError>) {
            switch outcome {
            case .success(let replies):
                for reply in replies {
                    if let refusal = RedisGraphStore.refusal(reply) { return completion(.notStored(refusal)) }
                }
                completion(.stored)
            case .failure(let error):
                completion(.notStored(.unavailable(reason: error.description)))
            }
        }
    }

    public func evaluation(id: String) -> StoreRead<StoredEvaluation> {
        guard Self.isEvaluationID(id) else { return .absent }  // ours are 32 hex digits: nothing else is stored
        return read(Self.evaluationKey(id)).flatMap { bytes throws(GraphCodec.Failure) in
            StoredEvaluation(id: id, graph: try GraphCodec.decodeEvaluation(bytes))
        }
    }

    public func mostRecentEvaluation() -> StoreRead<StoredEvaluation> {
        guard remembersMostRecent else { return .absent }
        switch read(Self.recentKey) {
        case .found(let id): return evaluation(id: String(decoding: id, as: UTF8.self))
        case .absent: return .absent
        case .unavailable(let reason): return .unavailable(reason: reason)
        }
    }

    public func deleteEvaluation(id: String) -> StoreDeletion {
        guard Self.isEvaluationID(id) else { return .absent }
        return delete(Self.evaluationKey(id))
    }

    public func register(_ spec: GraphSpec, key: String) -> StoreRegistration {
        guard Self.isRegistrationKey(key) else { return .notStored(.unavailable(reason: "not a graph key")) }
        let value = GraphCodec.encode(spec)
        guard value.count <= maxValueBytes else { return .notStored(.tooLarge) }
        do {
            // NX: the first registration of a content hash wins, as equal keys mean equal content.
            let reply = try client.command([Array("SET".utf8), Self.registeredKey(key), value, Array("NX".utf8)])
            if let refusal = Self.refusal(reply) { return .notStored(refusal) }
            return reply == .null ? .alreadyExisted : .created
        } catch {
            return .notStored(.unavailable(reason: error.description))
        }
    }

    public func registered(key: String) -> StoreRead<GraphSpec> {
        guard Self.isRegistrationKey(key) else { return .absent }
        return read(Self.registeredKey(key)).flatMap { bytes throws(GraphCodec.Failure) in try GraphCodec.decodeSpec(bytes) }
    }

    public func deleteRegistered(key: String) -> StoreDeletion {
        guard Self.isRegistrationKey(key) else { return .absent }
        return delete(Self.registeredKey(key))
    }

    /// The store's state, errors and round-trip latency, in Prometheus text format (appended to `/metrics`).
    public func metricsExposition() -> [UInt8] {
        statistics.exposition(available: client.state == .available)
    }

    // MARK: keys and replies

    static let recentKey = Array((keyPrefix + "recent").utf8)
    static let evaluationKeyPrefix = Array((keyPrefix + "eval:").utf8)
    static func evaluationKey(_ id: String) -> [UInt8] { evaluationKeyPrefix + Array(id.utf8) }
    static func registeredKey(_ key: String) -> [UInt8] { Array((keyPrefix + "graph:" + key).utf8) }

    static func isEvaluationID(_ id: String) -> Bool {
        var id = id
        return id.withUTF8 { bytes in  // over the bytes: the generic UTF8View loop cost ~1,400 instructions an id
            bytes.count == 32 && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        }
    }

    /// Content hashes are short and plain; anything else is never a key we wrote.
    static func isRegistrationKey(_ key: String) -> Bool {
        (1...128).contains(key.utf8.count) && key.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F
        }
    }

    /// A write's error reply as a reason: Redis at maxmemory with nothing to evict is `full`.
    private static func refusal(_ reply: RedisValue) -> NotStoredReason? {
        guard case .error(let message) = reply else { return nil }
        if message.hasPrefix("OOM") { return .full }
        return .unavailable(reason: "redis refused: \(message)")
    }

    private func read(_ key: [UInt8]) -> StoreRead<[UInt8]> {
        do {
            switch try client.command([Array("GET".utf8), key]) {
            case .bulk(let bytes): return .found(bytes)
            case .null: return .absent
            case .error(let message): return .unavailable(reason: "redis refused: \(message)")
            default: return .unavailable(reason: "unexpected reply to GET")
            }
        } catch {
            return .unavailable(reason: error.description)
        }
    }

    private func delete(_ key: [UInt8]) -> StoreDeletion {
        do {
            switch try client.command([Array("DEL".utf8), key]) {
            case .integer(let removed): return removed > 0 ? .deleted : .absent
            case .error(let message): return .unavailable(reason: "redis refused: \(message)")
            default: return .unavailable(reason: "unexpected reply to DEL")
            }
        } catch {
            return .unavailable(reason: error.description)
        }
    }
}

extension StoreRead<[UInt8]> {
    /// Decodes a found value; a value that does not decode is unavailable (logged by the caller's answer), not absent.
    fileprivate func flatMap<T>(_ decode: ([UInt8]) throws(GraphCodec.Failure) -> T) -> StoreRead<T> {
        switch self {
        case .found(let bytes):
            do {
                return .found(try decode(bytes))
            } catch {
                return .unavailable(reason: "the stored value is not a graph this version reads: \(error)")
            }
        case .absent: return .absent
        case .unavailable(let reason): return .unavailable(reason: reason)
        }
    }
}

/// Round trips, failures and skips of the store's Redis client, for `/metrics`.
final class RedisStatistics: Sendable {
    static let bounds: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1),
    ]

    private struct Counts {
        var buckets = [UInt64](repeating: 0, count: RedisStatistics.bounds.count + 1)
        var nanoseconds: UInt64 = 0
        var failures: UInt64 = 0
        var skipped: UInt64 = 0
        var outages: UInt64 = 0
    }
    private let counts = Mutex(Counts())

    func record(_ event: RedisClient.Event) {
        counts.withLock { counts in
            switch event {
            case .roundTrip(let duration, let succeeded):
                let bucket = Self.bounds.firstIndex { duration <= $0 } ?? Self.bounds.count
                counts.buckets[bucket] += 1
                let (seconds, attoseconds) = duration.components
                counts.nanoseconds &+= UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
                if !succeeded { counts.failures += 1 }
            case .skipped:
                counts.skipped += 1
            case .stateChanged(let state, _):
                if state == .unavailable { counts.outages += 1 }
            }
        }
    }

    func exposition(available: Bool) -> [UInt8] {
        let counts = counts.withLock { $0 }
        var text = """
            # HELP graph_store_up 1 when the shared graph store answers, 0 while it is skipped after a failure.
            # TYPE graph_store_up gauge
            graph_store_up{store="redis"} \(available ? 1 : 0)
            # TYPE graph_store_failures_total counter
            graph_store_failures_total{store="redis"} \(counts.failures)
            # HELP graph_store_skipped_total Store calls not tried because the store was down moments before.
            # TYPE graph_store_skipped_total counter
            graph_store_skipped_total{store="redis"} \(counts.skipped)
            # TYPE graph_store_outages_total counter
            graph_store_outages_total{store="redis"} \(counts.outages)
            # TYPE graph_store_round_trip_seconds histogram

            """
        var cumulative: UInt64 = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative += counts.buckets[index]
            let (seconds, attoseconds) = bound.components
            let value = Double(seconds) + Double(attoseconds) / 1e18
            text += "graph_store_round_trip_seconds_bucket{store=\"redis\",le=\"\(value)\"} \(cumulative)\n"
        }
        cumulative += counts.buckets[Self.bounds.count]
        text += "graph_store_round_trip_seconds_bucket{store=\"redis\",le=\"+Inf\"} \(cumulative)\n"
        text += "graph_store_round_trip_seconds_sum{store=\"redis\"} \(Double(counts.nanoseconds) / 1e9)\n"
        text += "graph_store_round_trip_seconds_count{store=\"redis\"} \(cumulative)\n"
        return Array(text.utf8)
    }
}
