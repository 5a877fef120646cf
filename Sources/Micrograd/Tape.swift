#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One node of the tape: what a C flat tape stores (op code, two input indices, data, grad), 32 bytes.
///
/// `b` is the second input, or negative: `-1` when the op has one input, and for `powConst`
/// `-2 - k` where `k` indexes the tape's constant table (so `b >= 0` always means "a real input").
/// `mark` is scratch for the reachability walks; it is false between calls.
@usableFromInline
struct Node {
    @usableFromInline var data: Double
    @usableFromInline var grad: Double
    @usableFromInline var a: Int32
    @usableFromInline var b: Int32
    @usableFromInline var op: Op
    @usableFromInline var mark: Bool

    @inlinable @inline(__always)
    init(data: Double, a: Int32, b: Int32, op: Op) {
        self.data = data
        self.grad = 0
        self.a = a
        self.b = b
        self.op = op
        self.mark = false
    }
}

/// The tape's state. It lives behind a pointer (``TapeHandle``) so that the hot paths touch plain memory:
/// no reference counting (a ``Value`` holds the pointer, not the class) and no dynamic exclusivity checks
/// (which stored `var`s of a class would pay).
@usableFromInline
struct TapeStorage {
    @usableFromInline var nodes: UnsafeMutablePointer<Node>?
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int
    /// Exponents of `powConst` nodes, in creation order, with the node that owns each.
    @usableFromInline var constants: [(node: Int32, value: Double)]
    /// Labels of labelled nodes (rare: names for drawings).
    var labels: [Int32: String]
    /// The highest labelled index, so that rewinding past every label costs nothing.
    var highestLabelled: Int32
    /// The ``Tape`` object that owns (and frees) this storage.
    var owner: Unmanaged<Tape>?
}

/// A trivial (ARC-free) reference to a tape's storage: what ``Value`` holds, and where every tape operation is
/// implemented. ``Tape`` is the owning, public face; it forwards here.
@usableFromInline
struct TapeHandle: Equatable {
    @usableFromInline let storage: UnsafeMutablePointer<TapeStorage>

    @inlinable @inline(__always)
    init(_ storage: UnsafeMutablePointer<TapeStorage>) { self.storage = storage }

    /// The tape object this storage belongs to.
    var tape: Tape {
        guard let owner = storage.pointee.owner else { preconditionFailure("This value's tape was released") }
        return owner.takeUnretainedValue()
    }

    @inlinable var count: Int { storage.pointee.count }

    // MARK: appending

    @inlinable @inline(__always)
    func leaf(_ data: Double) -> Int32 {
        append(Node(data: data, a: -1, b: -1, op: .leaf))
    }

    @inlinable @inline(__always)
    func apply(_ op: Op, _ a: Int32, _ b: Int32, constant: Double) -> Int32 {
        if _slowPath(!isValidApplication(op, a, b)) { invalidApplication(op, a, b) }
        let nodes = storage.pointee.nodes.unsafelyUnwrapped
        switch op {
        case .leaf:
            return leaf(constant)
        case .powConst:
            return appendPower(nodes[Int(a)].data, a, constant)
        default:
            let x = nodes[Int(a)].data
            let y = b >= 0 ? nodes[Int(b)].data : 0
            return append(Node(data: Rules.forward(op, x, y, 0), a: a, b: b, op: op))
        }
    }

    @usableFromInline
    func appendPower(_ x: Double, _ a: Int32, _ c: Double) -> Int32 {
        let k = storage.pointee.constants.count
        storage.pointee.constants.append((node: Int32(truncatingIfNeeded: count), value: c))
        let out = Rules.forward(.powConst, x, 0, c)
        return append(Node(data: out, a: a, b: Int32(truncatingIfNeeded: -2 - k), op: .powConst))
    }

    @inlinable @inline(__always)
    func isValidApplication(_ op: Op, _ a: Int32, _ b: Int32) -> Bool {
        // One unsigned compare per index: a negative index becomes huge and fails `< count` too.
        let n = UInt32(truncatingIfNeeded: count)
        let aExists = UInt32(bitPattern: a) < n
        switch op {
        case .leaf: return a == -1 && b == -1
        case .add, .sub, .mul, .div, .pow: return aExists && UInt32(bitPattern: b) < n
        default: return aExists && b == -1
        }
    }

    @usableFromInline @inline(never)
    func invalidApplication(_ op: Op, _ a: Int32, _ b: Int32) -> Never {
        preconditionFailure("Invalid tape application: \(op) over \(a), \(b) on a tape of \(count) nodes")
    }

    @inlinable @inline(__always)
    func append(_ node: Node) -> Int32 {
        let i = storage.pointee.count
        if _slowPath(i == storage.pointee.capacity) { grow() }
        storage.pointee.nodes.unsafelyUnwrapped[i] = node
        storage.pointee.count = i &+ 1
        return Int32(truncatingIfNeeded: i)
    }

    @usableFromInline @inline(never)
    func grow() {
        let old = storage.pointee.capacity
        precondition(old < Tape.maximumCount, "Tape is full (\(old) nodes)")
        reallocate(to: Swift.min(Swift.max(old * 2, 1024), Tape.maximumCount))
    }

    /// Node is trivial (plain old data), so `realloc` may move it bytewise.
    func reallocate(to capacity: Int) {
        let bytes = capacity * MemoryLayout<Node>.stride
        guard let raw = realloc(storage.pointee.nodes, bytes) else {
            fatalError("Tape: out of memory growing to \(capacity) nodes")
        }
        storage.pointee.nodes = raw.bindMemory(to: Node.self, capacity: capacity)
        storage.pointee.capacity = capacity
    }

    // MARK: nodes

    @inlinable @inline(__always)
    func node(_ i: Int32) -> UnsafeMutablePointer<Node> {
        if _slowPath(UInt32(bitPattern: i) >= UInt32(truncatingIfNeeded: count)) { invalidIndex(i) }
        return storage.pointee.nodes.unsafelyUnwrapped + Int(i)
    }

    @usableFromInline @inline(never)
    func invalidIndex(_ i: Int32) -> Never {
        preconditionFailure("Node index \(i) out of range (the tape has \(count) nodes; was it rewound?)")
    }

    func constant(_ i: Int32) -> Double? {
        let n = node(i).pointee
        return n.op == .powConst ? storage.pointee.constants[Int(-2 - n.b)].value : nil
    }

    func label(_ i: Int32) -> String? {
        _ = node(i)
        return storage.pointee.labels.isEmpty ? nil : storage.pointee.labels[i]
    }

    @usableFromInline
    func setLabel(_ i: Int32, _ label: String?) {
        _ = node(i)
        storage.pointee.labels[i] = label
        if label != nil { storage.pointee.highestLabelled = Swift.max(storage.pointee.highestLabelled, i) }
    }

    // MARK: gradients and walks

    func backward(from output: Int32) {
        let root = node(output)
        root.pointee.grad = 1
        root.pointee.mark = true
        let nodes = storage.pointee.nodes.unsafelyUnwrapped
        var i = Int(output)
        while i >= 0 {
            let n = nodes[i]
            if n.mark {
                nodes[i].mark = false
                if n.op != .leaf {
                    let a = Int(n.a), g = n.grad
                    if n.b >= 0 {
                        let b = Int(n.b)
                        let d = Rules.derivatives(n.op, nodes[a].data, nodes[b].data, n.data, 0)
                        nodes[a].grad += d.dx * g
                        nodes[a].mark = true
                        nodes[b].grad += d.dy * g
                        nodes[b].mark = true
                    } else {
                        let c = n.op == .powConst ? storage.pointee.constants[Int(-2 - n.b)].value : 0
                        nodes[a].grad += Rules.derivatives(n.op, nodes[a].data, 0, n.data, c).dx * g
                        nodes[a].mark = true
                    }
                }
            }
            i -= 1
        }
    }

    func recomputeForward(from start: Int) {
        guard let nodes = storage.pointee.nodes else { return }
        for i in Swift.max(start, 0)..<count {
            let n = nodes[i]
            switch n.op {
            case .leaf: continue
            case .powConst:
                nodes[i].data = Rules.forward(.powConst, nodes[Int(n.a)].data, 0, storage.pointee.constants[Int(-2 - n.b)].value)
            default:
                nodes[i].data = Rules.forward(n.op, nodes[Int(n.a)].data, n.b >= 0 ? nodes[Int(n.b)].data : 0, 0)
            }
        }
    }

    func zeroGrad() {
        guard let nodes = storage.pointee.nodes else { return }
        for i in 0..<count { nodes[i].grad = 0 }
    }

    /// Calls `body` with each ancestor of `output` (itself included), in descending index order.
    func forEachAncestor(of output: Int32, _ body: (Int) -> Void) {
        node(output).pointee.mark = true
        let nodes = storage.pointee.nodes.unsafelyUnwrapped
        var i = Int(output)
        while i >= 0 {
            let n = nodes[i]
            if n.mark {
                nodes[i].mark = false
                if n.a >= 0 { nodes[Int(n.a)].mark = true }
                if n.b >= 0 { nodes[Int(n.b)].mark = true }
                body(i)
            }
            i -= 1
        }
    }

    func ancestors(of output: Int32) -> [Int32] {
        var found: [Int32] = []
        forEachAncestor(of: output) { found.append(Int32(truncatingIfNeeded: $0)) }
        found.reverse()
        return found
    }

    // MARK: dropping

    func rewind(to count: Int) {
        precondition(count >= 0 && count <= self.count, "Cannot rewind a tape of \(self.count) nodes to \(count)")
        storage.pointee.count = count
        let limit = Int32(truncatingIfNeeded: count)
        while let last = storage.pointee.constants.last, last.node >= limit { storage.pointee.constants.removeLast() }
        if storage.pointee.highestLabelled >= limit {
            storage.pointee.labels = storage.pointee.labels.filter { $0.key < limit }
            storage.pointee.highestLabelled = storage.pointee.labels.keys.max() ?? -1
        }
    }

    func freeBuffer() {
        free(storage.pointee.nodes)
        storage.pointee.nodes = nil
        storage.pointee.capacity = 0
    }
}

/// A flat, append-only tape of scalar nodes: the storage of every ``Value``, in the style of
/// Stan Math's arena and ADOL-C's tapes.
///
/// A node can only refer to earlier nodes, so index order is a topological order by construction:
/// forward values are computed as nodes are appended, ``backward(from:)`` is one loop in reverse index
/// order, and nothing anywhere recurses over graph depth. Dropping nodes is O(1) (``rewind(to:)``,
/// ``removeAll(keepingCapacity:)``), and freeing a tape frees one buffer, however deep its graph.
/// Each node is what a C flat tape stores: op code, two input indices, data, grad (32 bytes).
///
/// **Lifetime in a training loop.** Parameters live on; each step's graph does not. Create the
/// parameters first, then build every step inside ``scoped(_:)`` (or between `let mark = tape.count` and
/// `tape.rewind(to: mark)`), so memory stays flat however many steps run:
///
///     let model = MLP(2, [16, 16, 1], seed: 1)        // parameters, on Tape.current
///     for _ in 0..<100 {
///         Tape.current.scoped {
///             let loss = ...                          // this step's graph, after the mark
///             loss.backward()
///             for p in model.parameters() { p.data -= 0.05 * p.grad }
///             model.zeroGrad()
///         }                                           // the step's nodes are dropped here
///     }
///
/// Handles (``Value``s and indices) to dropped nodes are invalid; reading one traps (until its index is
/// reused by a newer node). The tape must outlive its values: ``current`` lives as long as its thread; keep a
/// tape you create alive while you use its values (`withExtendedLifetime(tape) { ... }` where the tape is not
/// otherwise used after its values are made, since Swift may release an object after its last use).
///
/// A tape is not thread-safe: use one per thread (``current``) or per request.
public final class Tape {
    @usableFromInline let handle: TapeHandle

    /// The largest number of nodes a tape can hold (indices are `Int32`).
    public static let maximumCount = Int(Int32.max)

    /// Creates an empty tape with room for `capacity` nodes before it first grows.
    public init(capacity: Int = 0) {
        precondition(capacity >= 0 && capacity <= Tape.maximumCount, "Tape capacity out of range: \(capacity)")
        let storage = StoragePool.shared.take()
        handle = TapeHandle(storage)
        storage.pointee.owner = Unmanaged.passUnretained(self)
        if capacity > 0 { handle.reallocate(to: capacity) }
    }

    /// Frees the node buffer and empties the header, which goes back to ``StoragePool`` (see there why).
    deinit {
        handle.freeBuffer()
        handle.storage.pointee.count = 0
        handle.storage.pointee.constants = []
        handle.storage.pointee.labels = [:]
        handle.storage.pointee.highestLabelled = -1
        handle.storage.pointee.owner = nil
        StoragePool.shared.give(handle.storage)
    }

    /// The number of nodes on the tape; the next node gets this index.
    @inlinable public var count: Int { handle.count }

    /// The number of nodes the tape can hold before it next grows.
    public var capacity: Int { handle.storage.pointee.capacity }

    /// Makes room for at least `capacity` nodes without further growth.
    public func reserveCapacity(_ capacity: Int) {
        precondition(capacity <= Tape.maximumCount, "Tape capacity out of range: \(capacity)")
        if capacity > self.capacity { handle.reallocate(to: capacity) }
    }

    // MARK: appending

    /// Appends a leaf holding `data` and returns its index.
    @inlinable @inline(__always)
    public func leaf(_ data: Double) -> Int32 { handle.leaf(data) }

    /// Appends a node computing `op` over the earlier nodes `a` (and `b`, for ops with two inputs),
    /// computes its forward value, and returns its index. `constant` is the exponent of `.powConst`
    /// (and the data of a `.leaf`, which takes no inputs).
    ///
    /// Traps on an invalid index or a wrong number of inputs: callers decoding untrusted input must
    /// validate first (``isValidApplication(_:_:_:)`` says whether a call is valid).
    @inlinable @inline(__always)
    public func apply(_ op: Op, _ a: Int32, _ b: Int32 = -1, constant: Double = 0) -> Int32 {
        handle.apply(op, a, b, constant: constant)
    }

    /// Whether `apply(op, a, b)` would be valid: inputs are existing nodes, as many as `op.arity`.
    @inlinable public func isValidApplication(_ op: Op, _ a: Int32, _ b: Int32 = -1) -> Bool {
        handle.isValidApplication(op, a, b)
    }

    // MARK: reading and writing nodes (each traps on an index out of range)

    /// The forward value of node `i`.
    @inlinable public func data(_ i: Int32) -> Double { handle.node(i).pointee.data }
    /// The gradient accumulated into node `i` by ``backward(from:)``.
    @inlinable public func grad(_ i: Int32) -> Double { handle.node(i).pointee.grad }
    /// Overwrites the value of node `i` (a parameter update). Nodes computed from it are not recomputed.
    @inlinable public func setData(_ i: Int32, _ v: Double) { handle.node(i).pointee.data = v }
    /// Overwrites the gradient of node `i`.
    @inlinable public func setGrad(_ i: Int32, _ g: Double) { handle.node(i).pointee.grad = g }
    /// The op that produced node `i`.
    @inlinable public func op(_ i: Int32) -> Op { handle.node(i).pointee.op }

    /// The inputs of node `i`, in order; `-1` where absent (both for a leaf, the second for one-input ops).
    @inlinable public func inputs(_ i: Int32) -> (Int32, Int32) {
        let n = handle.node(i).pointee
        return (n.a, n.b >= 0 ? n.b : -1)
    }

    /// The constant exponent of a `powConst` node, nil for any other op.
    public func constant(_ i: Int32) -> Double? { handle.constant(i) }

    /// The label of node `i`, if one was set.
    public func label(_ i: Int32) -> String? { handle.label(i) }

    /// Sets (or with nil, removes) the label of node `i`.
    public func setLabel(_ i: Int32, _ label: String?) { handle.setLabel(i, label) }

    // MARK: gradients

    /// Reverse-mode differentiation: sets the grad of `output` to 1 and accumulates (`+=`) the chain rule
    /// into every ancestor of `output`, visiting nodes in reverse index order, each node's first input
    /// before its second, so the summation order (and every result bit) is deterministic.
    ///
    /// Only ancestors are touched: a node that does not reach `output` keeps its grad, so a non-ancestor's
    /// local derivative (say, an infinite one) can never leak `0 * inf = NaN` into a real ancestor. Reachability
    /// is marked in the same single reverse pass, so it costs one flag per node. Nodes after `output` are
    /// not read. Calling it twice without ``zeroGrad()`` adds the gradients twice, as in micrograd.
    public func backward(from output: Int32) { handle.backward(from: output) }

    /// Sets every node's grad to 0.
    public func zeroGrad() { handle.zeroGrad() }

    /// Recomputes the forward value of every non-leaf node from index `start` on, in index order: after
    /// ``setData(_:_:)`` on leaves, this re-evaluates the same graph without rebuilding it.
    public func recomputeForward(from start: Int = 0) { handle.recomputeForward(from: start) }

    /// Sets the grad of `output` and of each of its ancestors to 0 (other nodes keep theirs).
    public func zeroGrad(from output: Int32) {
        let h = handle
        h.forEachAncestor(of: output) { h.storage.pointee.nodes.unsafelyUnwrapped[$0].grad = 0 }
    }

    // MARK: walks

    /// The ancestors of `output` (itself included) in topological order: inputs before the nodes using them.
    /// This is ascending index order, so it is deterministic. Iterative: no recursion over depth.
    public func ancestors(of output: Int32) -> [Int32] { handle.ancestors(of: output) }

    // MARK: dropping nodes

    /// Drops every node made after `count` (a mark taken earlier from ``count``), as Stan's nested arenas
    /// do: the next node reuses index `count`. The capacity is kept. O(1) plus the dropped labels/constants.
    public func rewind(to count: Int) { handle.rewind(to: count) }

    /// Drops every node; with `keepingCapacity` false the buffer is freed too.
    public func removeAll(keepingCapacity: Bool = true) {
        handle.rewind(to: 0)
        if !keepingCapacity {
            handle.freeBuffer()
            handle.storage.pointee.constants = []
            handle.storage.pointee.labels = [:]
        }
    }

    /// Runs `body`, then drops every node it made: a training step's graph, a request's graph.
    /// Nodes made before the call (parameters) survive; handles made inside must not escape.
    @discardableResult
    public func scoped<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        let mark = count
        defer { rewind(to: mark) }
        return try body()
    }
}
