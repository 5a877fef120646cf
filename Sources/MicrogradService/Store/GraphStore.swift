import MicrogradGraph
import Synchronization

/// Evaluated graphs kept for `GET /graph.*`, bounded by count and by bytes, least recently used out.
///
/// Ids are 128 random bits (unguessable), so a stored graph is readable only by whoever got its id,
/// unless "most recent" is enabled (the default; `--private` turns it off).
public final class GraphStore: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxGraphs: Int
        public var maxBytes: Int
        public init(maxGraphs: Int = 256, maxBytes: Int = 256 << 20) {
            self.maxGraphs = maxGraphs
            self.maxBytes = maxBytes
        }
    }

    private struct Entry {
        var graph: EvaluatedGraph
        var bytes: Int
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var totalBytes = 0
        var clock: UInt64 = 0
        var mostRecentID: String?
    }

    public let limits: Limits
    public let remembersMostRecent: Bool
    private let state = Mutex(State())

    public init(limits: Limits = Limits(), remembersMostRecent: Bool = true) {
        self.limits = limits
        self.remembersMostRecent = remembersMostRecent
    }

    /// A fresh unguessable id: 32 lowercase hex digits.
    public static func makeID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        let hex = String(high, radix: 16), hexLow = String(low, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 16 - hexLow.count) + hexLow
    }

    /// Keeps `graph` under `id`; returns false when it alone exceeds the byte limit (then it is not kept).
    @discardableResult
    public func insert(_ graph: EvaluatedGraph, id: String) -> Bool {
        let bytes = Self.estimatedBytes(of: graph)
        guard bytes <= limits.maxBytes, limits.maxGraphs > 0 else { return false }
        state.withLock { state in
            state.clock += 1
            if let old = state.entries.removeValue(forKey: id) { state.totalBytes -= old.bytes }
            state.entries[id] = Entry(graph: graph, bytes: bytes, lastUse: state.clock)
            state.totalBytes += bytes
            state.mostRecentID = id
            // Eviction scans for the oldest entry: O(count) with count bounded by maxGraphs (hundreds),
            // cheaper to keep right than a linked list, and only paid when the store is full.
            while state.entries.count > limits.maxGraphs || state.totalBytes > limits.maxBytes {
                guard let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key else { break }
                if let removed = state.entries.removeValue(forKey: oldest) { state.totalBytes -= removed.bytes }
                if state.mostRecentID == oldest { state.mostRecentID = nil }
            }
        }
        return true
    }

    /// The graph stored under `id` (marking it used), or the most recent one when `id` is nil and that is allowed.
    public func graph(id: String?) -> (id: String, graph: EvaluatedGraph)? {
        state.withLock { state in
            guard let key = id ?? (remembersMostRecent ? state.mostRecentID : nil),
                  var entry = state.entries[key] else { return nil }
            state.clock += 1
            entry.lastUse = state.clock
            state.entries[key] = entry
            return (key, entry.graph)
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
    public var totalBytes: Int { state.withLock { $0.totalBytes } }

    /// What a stored graph costs: its arrays plus the out-of-line bytes of long ids and labels.
    static func estimatedBytes(of graph: EvaluatedGraph) -> Int {
        let spec = graph.spec
        var bytes = spec.count * (16 + 17 + 1 + 4 + 4 + 8 + 1 + 8 + 8) + 256
        for id in spec.ids where id.utf8.count > 15 { bytes += id.utf8.count }
        for case let label? in spec.labels where label.utf8.count > 15 { bytes += label.utf8.count }
        return bytes
    }
}
