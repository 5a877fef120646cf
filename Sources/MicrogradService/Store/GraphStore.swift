import MicrogradGraph

/// Where the service keeps graphs: evaluated graphs for `GET /graph.*` (bounded, least recently used out) and
/// registered graphs keyed by their content hash (kept until deleted, never pushed out by evaluations).
///
/// Every operation answers in three ways because a shared store can be down: a read that cannot reach the store
/// says `.unavailable`, never `.absent`, so the service answers 503 and not a wrong 404.
/// Implementations: ``InMemoryGraphStore`` (the default); a shared store plugs in through `GraphService(store:)`.
public protocol GraphStore: Sendable {
    /// A fresh, unguessable id for an evaluation. The store mints it so a shared store can choose its own scheme;
    /// the id is answered even when the graph is then not stored (too large, store down).
    func newEvaluationID() -> String

    /// Keeps an evaluated graph under `id` (from ``newEvaluationID()``), making it the most recent one.
    func putEvaluation(_ graph: EvaluatedGraph, id: String) -> StoreWrite

    /// True when ``putEvaluation(_:id:completion:)`` answers later, from another thread (a store waiting on I/O):
    /// a caller that can answer later (`POST /evaluate`) then frees its worker thread meanwhile.
    var writesLater: Bool { get }

    /// ``putEvaluation(_:id:)`` that calls `completion` once with the outcome instead of returning it: from another
    /// thread when ``writesLater``, else before it returns.
    func putEvaluation(_ graph: EvaluatedGraph, id: String, completion: @escaping @Sendable (StoreWrite) -> Void)

    /// ``putEvaluation(_:id:)`` for a store that does not write later, taking the graph instead of copying it:
    /// `answer` is called once, before this returns, with the graph and the write's outcome (the store may keep
    /// the graph only after `answer` returned; nothing reads it before the answer is sent anyway).
    func putEvaluation<Answer>(
        consuming graph: consuming EvaluatedGraph, id: String, answer: (borrowing EvaluatedGraph, StoreWrite) -> Answer
    ) -> Answer

    /// The evaluated graph stored under `id`.
    func evaluation(id: String) -> StoreRead<StoredEvaluation>

    /// The evaluated graph stored last (absent when it was evicted or deleted since).
    func mostRecentEvaluation() -> StoreRead<StoredEvaluation>

    func deleteEvaluation(id: String) -> StoreDeletion

    /// Keeps `spec` under `key` (its content hash, computed by the caller). Registering the same key again is
    /// `.alreadyExisted` and keeps the first spec: equal keys mean equal content.
    func register(_ spec: GraphSpec, key: String) -> StoreRegistration

    func registered(key: String) -> StoreRead<GraphSpec>

    func deleteRegistered(key: String) -> StoreDeletion

    /// The store's own series for `/metrics` (Prometheus text format); empty for a store with nothing to report.
    func metricsExposition() -> [UInt8]
}

extension GraphStore {
    public func metricsExposition() -> [UInt8] { [] }

    public var writesLater: Bool { false }

    public func putEvaluation(_ graph: EvaluatedGraph, id: String, completion: @escaping @Sendable (StoreWrite) -> Void) {
        completion(putEvaluation(graph, id: id))
    }

    public func putEvaluation<Answer>(
        consuming graph: consuming EvaluatedGraph, id: String, answer: (borrowing EvaluatedGraph, StoreWrite) -> Answer
    ) -> Answer {
        let write = putEvaluation(graph, id: id)
        return answer(graph, write)
    }
}

/// An evaluated graph and the id it is stored under.
public struct StoredEvaluation: Sendable {
    public var id: String
    public var graph: EvaluatedGraph

    public init(id: String, graph: EvaluatedGraph) {
        self.id = id
        self.graph = graph
    }
}

/// The answer to a read.
public enum StoreRead<Value: Sendable>: Sendable {
    case found(Value)
    case absent
    /// The store could not be asked (a shared store down or timing out): nothing is known about the key.
    case unavailable(reason: String)
}

/// Why a write did not keep its graph.
public enum NotStoredReason: Sendable, Equatable {
    /// The graph alone is over the store's byte limit.
    case tooLarge
    /// The store is at its limit and does not evict what this write would need (registered graphs).
    case full
    case unavailable(reason: String)
}

/// The answer to ``GraphStore/putEvaluation(_:id:)``.
public enum StoreWrite: Sendable, Equatable {
    case stored
    case notStored(NotStoredReason)
}

/// The answer to ``GraphStore/register(_:key:)``.
public enum StoreRegistration: Sendable, Equatable {
    case created
    case alreadyExisted
    case notStored(NotStoredReason)
}

/// The answer to a delete.
public enum StoreDeletion: Sendable, Equatable {
    case deleted
    case absent
    case unavailable(reason: String)
}

extension StoreRead {
    /// The value when found; nil when absent or unavailable (for callers that treat both alike, like tests).
    public var value: Value? {
        if case .found(let value) = self { return value }
        return nil
    }
}
