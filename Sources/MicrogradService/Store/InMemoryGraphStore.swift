import MicrogradGraph
import Synchronization

/// The graph store in this process's memory: the default, and what a single instance needs.
///
/// Evaluated graphs are bounded by count and by bytes, least recently used out. Registered graphs have their own
/// bounds and are never evicted: a full registry refuses (`.notStored(.full)`) until something is deleted.
/// Ids are 128 random bits (unguessable), so a stored graph is readable only by whoever got its id
/// (or as "most recent", unless the service is private).
public final class InMemoryGraphStore: GraphStore {
    public struct Limits: Sendable, Equatable {
        public var maxGraphs: Int
        public var maxBytes: Int
        public var maxRegisteredGraphs: Int
        public var maxRegisteredBytes: Int

        public init(maxGraphs: Int = 256, maxBytes: Int = 256 << 20,
                    maxRegisteredGraphs: Int = 1_000, maxRegisteredBytes: Int = 256 << 20) {
            self.maxGraphs = maxGraphs
            self.maxBytes = maxBytes
            self.maxRegisteredGraphs = maxRegisteredGraphs
            self.maxRegisteredBytes = maxRegisteredBytes
        }
    }

    private struct Entry {
        var graph: EvaluatedGraph
        var bytes: Int
        var lastUse: UInt64
    }

    /// An id with its hash taken before locking: hashing the 32-byte String inside the lock, twice per put (the new
    /// id and the evicted one), lengthened the critical section both workers contend for; an evicted key's hash
    /// is reused from the use queue.
    private struct Key: Hashable {
        let id: String
        let hash: Int

        init(_ id: String) {
            self.id = id
            hash = id.hashValue
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        /// What Dictionary hashes keys with. `hash` is already a seeded SipHash of the id, so it is mixed with the
        /// table's seed instead of going through a Hasher again: ~5 Hasher passes a put (lookups, and the rehash
        /// of entries a deletion shifts), ~130 instructions each, inside the lock.
        func _rawHashValue(seed: Int) -> Int { hash ^ seed }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id }
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var totalBytes = 0
        var clock: UInt64 = 0
        var mostRecentID: Key?
        /// Every insert and use, oldest first, from `head` on: the LRU order without scanning the entries.
        /// An item is stale once its id was used again (or removed): its `use` is then not the entry's `lastUse`.
        var uses: [(use: UInt64, id: Key)] = []
        var head = 0

        mutating func noteUse(_ id: Key) -> UInt64 {
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

        /// The graph under `id`, marked as used now.
        mutating func use(_ id: Key) -> EvaluatedGraph? {
            guard entries[id] != nil else { return nil }
            entries[id]!.lastUse = noteUse(id)
            compactUses()
            return entries[id]!.graph
        }

        /// Removes the least recently used entry and returns it (nil when there is none), for the caller to free
        /// after unlocking.
        mutating func evictOldest() -> Entry? {
            while head < uses.count {
                let (use, id) = uses[head]
                head += 1
                // Checked in place and moved out: a copy of the entry was a retain and a release per array.
                if let index = entries.index(forKey: id), entries.values[index].lastUse == use {
                    let entry = entries.remove(at: index).value
                    totalBytes -= entry.bytes
                    if mostRecentID == id { mostRecentID = nil }
                    return entry
                }
            }
            return nil
        }
    }

    /// Entries taken out under the lock; the common put evicts one, held without an array allocation.
    private struct Removed {
        var first: Entry?
        var rest: [Entry] = []

        mutating func add(_ entry: Entry) {
            if first == nil { first = entry } else { rest.append(entry) }
        }
    }

    private struct Registry {
        var specs: [String: (spec: GraphSpec, bytes: Int)] = [:]
        var totalBytes = 0
    }

    public let limits: Limits
    private let state = Mutex(State())
    private let registry = Mutex(Registry())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public func newEvaluationID() -> String { EvaluationID.random() }

    public func putEvaluation(_ graph: EvaluatedGraph, id: String) -> StoreWrite {
        putEvaluation(consuming: graph, id: id) { _, write in write }
    }

    public func putEvaluation<Answer>(
        consuming graph: consuming EvaluatedGraph, id: String, answer: (borrowing EvaluatedGraph, StoreWrite) -> Answer
    ) -> Answer {
        let bytes = graph.estimatedBytes
        guard bytes <= limits.maxBytes, limits.maxGraphs > 0 else { return answer(graph, .notStored(.tooLarge)) }
        let answered = answer(graph, .stored)
        // Moved in through an Optional: a closure cannot consume what it captures.
        var incoming: EvaluatedGraph? = consume graph
        // What leaves the store is freed after unlocking: freeing a graph (a dozen arrays) inside the lock made
        // every other worker's store access wait for it.
        let id = Key(id)
        let removed = state.withLock { state -> Removed in
            var removed = Removed()
            let entry = Entry(graph: incoming.take()!, bytes: bytes, lastUse: state.noteUse(id))
            if let old = state.entries.updateValue(consume entry, forKey: id) {
                state.totalBytes -= old.bytes
                removed.add(old)
            }
            state.totalBytes += bytes
            state.mostRecentID = id
            // Oldest first from the use queue, not a scan of every entry.
            while state.entries.count > limits.maxGraphs || state.totalBytes > limits.maxBytes {
                guard let entry = state.evictOldest() else { break }
                removed.add(entry)
            }
            state.compactUses()
            return removed
        }
        _ = removed  // freed here, unlocked
        return answered
    }

    public func evaluation(id: String) -> StoreRead<StoredEvaluation> {
        let key = Key(id)
        return state.withLock { state in state.use(key).map { .found(StoredEvaluation(id: id, graph: $0)) } ?? .absent }
    }

    public func mostRecentEvaluation() -> StoreRead<StoredEvaluation> {
        state.withLock { state in
            guard let id = state.mostRecentID, let graph = state.use(id) else { return .absent }
            return .found(StoredEvaluation(id: id.id, graph: graph))
        }
    }

    public func deleteEvaluation(id: String) -> StoreDeletion {
        let id = Key(id)
        return state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: id) else { return .absent }
            state.totalBytes -= entry.bytes
            if state.mostRecentID == id { state.mostRecentID = nil }
            state.compactUses()
            return .deleted
        }
    }

    public func register(_ spec: GraphSpec, key: String) -> StoreRegistration {
        let bytes = spec.estimatedBytes
        guard bytes <= limits.maxRegisteredBytes else { return .notStored(.tooLarge) }
        return registry.withLock { registry in
            if registry.specs[key] != nil { return .alreadyExisted }
            guard registry.specs.count < limits.maxRegisteredGraphs,
                  registry.totalBytes + bytes <= limits.maxRegisteredBytes else { return .notStored(.full) }
            registry.specs[key] = (spec, bytes)
            registry.totalBytes += bytes
            return .created
        }
    }

    public func registered(key: String) -> StoreRead<GraphSpec> {
        registry.withLock { registry in registry.specs[key].map { .found($0.spec) } ?? .absent }
    }

    public func deleteRegistered(key: String) -> StoreDeletion {
        registry.withLock { registry in
            guard let (_, bytes) = registry.specs.removeValue(forKey: key) else { return .absent }
            registry.totalBytes -= bytes
            return .deleted
        }
    }

    /// Evaluated graphs held, and their estimated bytes.
    public var count: Int { state.withLock { $0.entries.count } }
    public var totalBytes: Int { state.withLock { $0.totalBytes } }
    /// Registered graphs held, and their estimated bytes.
    public var registeredCount: Int { registry.withLock { $0.specs.count } }
    public var registeredBytes: Int { registry.withLock { $0.totalBytes } }
}
