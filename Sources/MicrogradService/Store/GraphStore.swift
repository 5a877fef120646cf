import MicrogradGraph
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
        /// Every insert and use, oldest first, from `head` on: the LRU order without scanning the entries.
        /// An item is stale once its id was used again (or removed): its `use` is then not the entry's `lastUse`.
        var uses: [(use: UInt64, id: String)] = []
        var head = 0

        mutating func noteUse(_ id: String) -> UInt64 {
            clock += 1
            uses.append((clock, id))
            return clock
        }

        /// Drops popped and stale items once they outnumber the live ones: O(1) amortised per use.
        /// Call with `entries` up to date.
        mutating func compactUses() {
            let window = uses.count - head
            if window > 2 * entries.count + 64 {
                // Many re-reads left stale items: keep the live ones (a lookup each).
                uses = uses[head...].filter { entries[$0.id]?.lastUse == $0.use }
                head = 0
            } else if head > 64 && head > window {
                // The steady state of inserts: only popped items lie before `head`; drop them without lookups.
                uses.removeSubrange(0..<head)
                head = 0
            }
        }

        /// Removes the least recently used entry; false when there is none.
        mutating func evictOldest() -> Bool {
            while head < uses.count {
                let (use, id) = uses[head]
                head += 1
                if let entry = entries[id], entry.lastUse == use {
                    entries[id] = nil
                    totalBytes -= entry.bytes
                    if mostRecentID == id { mostRecentID = nil }
                    return true
                }
            }
            return false
        }
    }

    public let limits: Limits
    public let remembersMostRecent: Bool
    private let state = Mutex(State())

    public init(limits: Limits = Limits(), remembersMostRecent: Bool = true) {
        self.limits = limits
        self.remembersMostRecent = remembersMostRecent
    }

    /// A fresh unguessable id: 32 lowercase hex digits of 128 bits from the system's CSPRNG.
    public static func makeID() -> String {
        let (high, low) = randomPool.withLock { $0.next128() }
        return String(unsafeUninitializedCapacity: 32) { out in
            for k in 0..<16 {
                out[k] = hexDigits[Int(truncatingIfNeeded: high >> UInt64(60 - 4 * k)) & 0xF]
                out[16 + k] = hexDigits[Int(truncatingIfNeeded: low >> UInt64(60 - 4 * k)) & 0xF]
            }
            return 32
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Kernel randomness fetched 4 KiB at a time: two `getrandom` calls per id were ~7% of a small request's CPU.
    private static let randomPool = Mutex(RandomPool())

    private struct RandomPool {
        var words = [UInt64](repeating: 0, count: 512)
        var next = 512

        mutating func next128() -> (UInt64, UInt64) {
            if next + 2 > words.count {
                words.withUnsafeMutableBytes { Self.fillFromKernel($0) }
                next = 0
            }
            defer { next += 2 }
            return (words[next], words[next + 1])
        }

        /// getentropy(3) (getrandom(2) underneath) gives at most 256 bytes per call and fails only on broken systems.
        static func fillFromKernel(_ buffer: UnsafeMutableRawBufferPointer) {
            var filled = 0
            #if canImport(Glibc)
            while filled < buffer.count {
                let n = min(256, buffer.count - filled)
                guard getentropy(buffer.baseAddress! + filled, n) == 0 else { break }
                filled += n
            }
            #endif
            // Elsewhere, or if getentropy ever failed: the standard library's CSPRNG, a word at a time.
            var generator = SystemRandomNumberGenerator()
            while filled < buffer.count {
                buffer[filled] = UInt8(truncatingIfNeeded: generator.next() as UInt64)
                filled += 1
            }
        }
    }

    /// Keeps `graph` under `id`; returns false when it alone exceeds the byte limit (then it is not kept).
    @discardableResult
    public func insert(_ graph: EvaluatedGraph, id: String) -> Bool {
        let bytes = Self.estimatedBytes(of: graph)
        guard bytes <= limits.maxBytes, limits.maxGraphs > 0 else { return false }
        state.withLock { state in
            let use = state.noteUse(id)
            if let old = state.entries.updateValue(Entry(graph: graph, bytes: bytes, lastUse: use), forKey: id) {
                state.totalBytes -= old.bytes
            }
            state.totalBytes += bytes
            state.mostRecentID = id
            // Oldest first from the use queue: a full store used to scan (and copy) every entry per insert,
            // 70% of a small POST /evaluate's CPU.
            while state.entries.count > limits.maxGraphs || state.totalBytes > limits.maxBytes {
                if !state.evictOldest() { break }
            }
            state.compactUses()
        }
        return true
    }

    /// The graph stored under `id` (marking it used), or the most recent one when `id` is nil and that is allowed.
    public func graph(id: String?) -> (id: String, graph: EvaluatedGraph)? {
        state.withLock { state in
            guard let key = id ?? (remembersMostRecent ? state.mostRecentID : nil),
                  state.entries[key] != nil else { return nil }
            let use = state.noteUse(key)
            state.entries[key]!.lastUse = use
            state.compactUses()
            return (key, state.entries[key]!.graph)
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
