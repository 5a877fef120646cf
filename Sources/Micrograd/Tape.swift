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

/// The growable node buffer. It lives behind a pointer so that the hot paths (append, backward)
/// touch plain memory: stored `var`s of a class would pay Swift's dynamic exclusivity checks.
@usableFromInline
struct NodeBuffer {
    @usableFromInline var nodes: UnsafeMutablePointer<Node>?
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int
}

/// A flat, append-only tape of scalar nodes: the storage of every ``Value``, in the style of
/// Stan Math's arena and ADOL-C's tapes.
///
/// A node can only refer to earlier nodes, so index order is a topological order by construction:
/// forward values are computed as nodes are appended, ``backward(from:)`` is one loop in reverse index
/// order, and nothing anywhere recurses over graph depth. Dropping nodes is O(1) (``rewind(to:)``,
/// ``removeAll(keepingCapacity:)``), and freeing a tape frees one buffer, however deep its graph.
///
/// **Lifetime in a training loop.** Parameters live on; each step's graph does not. Create the
/// parameters first, then build every step inside ``scoped(_:)`` (or between `let mark = tape.count` and
/// `tape.rewind(to: mark)`), so memory stays flat however many steps run:
///
///     let model = MLP(2, [16, 16, 1], seed: 1)        // parameters, on Tape.current
///     for _ in 0..<100 {
///         Tape.current.scoped {
///             let loss = model.loss(...)              // this step's graph, after the mark
///             loss.backward()
///             for p in model.parameters() { p.data -= 0.05 * p.grad }
///             model.zeroGrad()
///         }                                           // the step's nodes are dropped here
///     }
///
/// Handles (``Value``s and indices) to dropped nodes are invalid; reading one traps.
///
/// A tape is not thread-safe: use one per thread (``current``) or per request.
public final class Tape {
    @usableFromInline let buffer: UnsafeMutablePointer<NodeBuffer>
    /// Exponents of `powConst` nodes, in creation order, with the node that owns each.
    @usableFromInline var constants: [(node: Int32, value: Double)] = []
    /// Labels of labelled nodes (rare: names for drawings).
    var labels: [Int32: String] = [:]
    /// The highest labelled index, so that rewinding past every label costs nothing.
    var highestLabelled: Int32 = -1

    /// The largest number of nodes a tape can hold (indices are `Int32`).
    public static let maximumCount = Int(Int32.max)

    /// Creates an empty tape with room for `capacity` nodes before it first grows.
    public init(capacity: Int = 0) {
        precondition(capacity >= 0 && capacity <= Tape.maximumCount, "Tape capacity out of range: \(capacity)")
        buffer = .allocate(capacity: 1)
        buffer.initialize(to: NodeBuffer(nodes: nil, count: 0, capacity: 0))
        if capacity > 0 { reallocate(to: capacity) }
    }

    deinit {
        free(buffer.pointee.nodes)
        buffer.deinitialize(count: 1)
        buffer.deallocate()
    }

    /// The number of nodes on the tape; the next node gets this index.
    @inlinable public var count: Int { buffer.pointee.count }

    /// The number of nodes the tape can hold before it next grows.
    public var capacity: Int { buffer.pointee.capacity }

    // MARK: appending

    /// Appends a leaf holding `data` and returns its index.
    @inlinable @inline(__always)
    public func leaf(_ data: Double) -> Int32 {
        append(Node(data: data, a: -1, b: -1, op: .leaf))
    }

    /// Appends a node computing `op` over the earlier nodes `a` (and `b`, for ops with two inputs),
    /// computes its forward value, and returns its index. `constant` is the exponent of `.powConst`.
    ///
    /// Traps on an invalid index or a wrong number of inputs (callers decoding untrusted input must
    /// validate first; ``isValidApplication(_:_:_:)`` says whether a call is valid).
    @inlinable @inline(__always)
    public func apply(_ op: Op, _ a: Int32, _ b: Int32 = -1, constant: Double = 0) -> Int32 {
        precondition(isValidApplication(op, a, b), "Invalid tape application: \(op) over \(a), \(b) with \(count) nodes")
        let nodes = buffer.pointee.nodes.unsafelyUnwrapped
        switch op {
        case .leaf:
            return leaf(constant)
        case .powConst:
            let k = constants.count
            constants.append((node: Int32(truncatingIfNeeded: count), value: constant))
            let out = Rules.forward(.powConst, nodes[Int(a)].data, 0, constant)
            return append(Node(data: out, a: a, b: Int32(truncatingIfNeeded: -2 - k), op: .powConst))
        default:
            let x = nodes[Int(a)].data
            let y = b >= 0 ? nodes[Int(b)].data : 0
            return append(Node(data: Rules.forward(op, x, y, 0), a: a, b: b, op: op))
        }
    }

    /// Whether `apply(op, a, b)` would be valid: inputs are existing nodes, as many as `op.arity`.
    @inlinable @inline(__always)
    public func isValidApplication(_ op: Op, _ a: Int32, _ b: Int32) -> Bool {
        let n = count
        switch op {
        case .leaf: return a == -1 && b == -1
        case .add, .sub, .mul, .div, .pow:
            return a >= 0 && Int(a) < n && b >= 0 && Int(b) < n
        default:
            return a >= 0 && Int(a) < n && b == -1
        }
    }

    @inlinable @inline(__always)
    func append(_ node: Node) -> Int32 {
        let i = buffer.pointee.count
        if _slowPath(i == buffer.pointee.capacity) { grow() }
        buffer.pointee.nodes.unsafelyUnwrapped[i] = node
        buffer.pointee.count = i + 1
        return Int32(truncatingIfNeeded: i)
    }

    @usableFromInline @inline(never)
    func grow() {
        let old = buffer.pointee.capacity
        precondition(old < Tape.maximumCount, "Tape is full (\(old) nodes)")
        reallocate(to: Swift.min(Swift.max(old * 2, 1024), Tape.maximumCount))
    }

    /// Node is trivial (plain old data), so `realloc` may move it bytewise.
    private func reallocate(to capacity: Int) {
        let bytes = capacity * MemoryLayout<Node>.stride
        guard let raw = realloc(buffer.pointee.nodes, bytes) else {
            fatalError("Tape: out of memory growing to \(capacity) nodes")
        }
        buffer.pointee.nodes = raw.bindMemory(to: Node.self, capacity: capacity)
        buffer.pointee.capacity = capacity
    }

    /// Makes room for at least `capacity` nodes without further growth.
    public func reserveCapacity(_ capacity: Int) {
        precondition(capacity <= Tape.maximumCount, "Tape capacity out of range: \(capacity)")
        if capacity > buffer.pointee.capacity { reallocate(to: capacity) }
    }

    // MARK: reading and writing nodes

    @inlinable @inline(__always)
    func node(_ i: Int32) -> UnsafeMutablePointer<Node> {
        precondition(i >= 0 && Int(i) < count, "Node index \(i) out of range (tape has \(count) nodes)")
        return buffer.pointee.nodes.unsafelyUnwrapped + Int(i)
    }

    /// The forward value of node `i`.
    @inlinable public func data(_ i: Int32) -> Double { node(i).pointee.data }
    /// The gradient accumulated into node `i` by ``backward(from:)``.
    @inlinable public func grad(_ i: Int32) -> Double { node(i).pointee.grad }
    /// Overwrites the value of node `i` (a parameter update). Nodes computed from it are not recomputed.
    @inlinable public func setData(_ i: Int32, _ v: Double) { node(i).pointee.data = v }
    /// Overwrites the gradient of node `i`.
    @inlinable public func setGrad(_ i: Int32, _ g: Double) { node(i).pointee.grad = g }
    /// The op that produced node `i`.
    @inlinable public func op(_ i: Int32) -> Op { node(i).pointee.op }

    /// The inputs of node `i`, in order; `-1` where absent (both for a leaf, the second for one-input ops).
    @inlinable public func inputs(_ i: Int32) -> (Int32, Int32) {
        let n = node(i).pointee
        return (n.a, n.b >= 0 ? n.b : -1)
    }

    /// The constant exponent of a `powConst` node, nil for any other op.
    public func constant(_ i: Int32) -> Double? {
        let n = node(i).pointee
        return n.op == .powConst ? constants[Int(-2 - n.b)].value : nil
    }

    /// The label of node `i`, if one was set.
    public func label(_ i: Int32) -> String? {
        _ = node(i)
        return labels.isEmpty ? nil : labels[i]
    }

    /// Sets (or with nil, removes) the label of node `i`.
    public func setLabel(_ i: Int32, _ label: String?) {
        _ = node(i)
        labels[i] = label
        if label != nil { highestLabelled = Swift.max(highestLabelled, i) }
    }

    // MARK: gradients

    /// Reverse-mode differentiation: sets the grad of `output` to 1 and accumulates (`+=`) the chain rule
    /// into every ancestor of `output`, visiting nodes in reverse index order, each node's first input
    /// before its second, so the summation order (and every result bit) is deterministic.
    ///
    /// Only ancestors are touched: a node that does not reach `output` keeps its grad, so a non-ancestor's
    /// local derivative (say, an infinite one) can never leak `0 * inf = NaN` into a real ancestor. Reachability
    /// is marked in the same single reverse pass, so it costs one flag per node. Nodes after `output` are
    /// not read. Calling it twice without ``zeroGrad()`` adds the gradients twice, as in micrograd.
    public func backward(from output: Int32) {
        let root = node(output)
        root.pointee.grad = 1
        root.pointee.mark = true
        let nodes = buffer.pointee.nodes.unsafelyUnwrapped
        var i = Int(output)
        while i >= 0 {
            let n = nodes[i]
            i -= 1
            guard n.mark else { continue }
            nodes[i + 1].mark = false
            if n.op == .leaf { continue }
            let a = Int(n.a), g = n.grad
            if n.b >= 0 {
                let b = Int(n.b)
                let d = Rules.derivatives(n.op, nodes[a].data, nodes[b].data, n.data, 0)
                nodes[a].grad += d.dx * g
                nodes[a].mark = true
                nodes[b].grad += d.dy * g
                nodes[b].mark = true
            } else {
                let c = n.op == .powConst ? constants[Int(-2 - n.b)].value : 0
                let d = Rules.derivatives(n.op, nodes[a].data, 0, n.data, c)
                nodes[a].grad += d.dx * g
                nodes[a].mark = true
            }
        }
    }

    /// Sets every node's grad to 0.
    public func zeroGrad() {
        let nodes = buffer.pointee.nodes
        for i in 0..<count { nodes.unsafelyUnwrapped[i].grad = 0 }
    }

    /// Sets the grad of `output` and of each of its ancestors to 0 (other nodes keep theirs).
    public func zeroGrad(from output: Int32) {
        forEachAncestor(of: output) { node(Int32(truncatingIfNeeded: $0)).pointee.grad = 0 }
    }

    // MARK: walks

    /// The ancestors of `output` (itself included) in topological order: inputs before the nodes using them.
    /// This is ascending index order, so it is deterministic. Iterative; no recursion over depth.
    public func ancestors(of output: Int32) -> [Int32] {
        var found: [Int32] = []
        forEachAncestor(of: output) { found.append(Int32(truncatingIfNeeded: $0)) }
        found.reverse()
        return found
    }

    /// Calls `body` with each ancestor of `output` (itself included), in descending index order.
    func forEachAncestor(of output: Int32, _ body: (Int) -> Void) {
        node(output).pointee.mark = true
        let nodes = buffer.pointee.nodes.unsafelyUnwrapped
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

    // MARK: dropping nodes

    /// Drops every node made after `count` (a mark taken earlier from ``count``), as Stan's nested arenas
    /// do: the next node reuses index `count`. The capacity is kept. O(1) plus the dropped labels/constants.
    public func rewind(to count: Int) {
        precondition(count >= 0 && count <= self.count, "Cannot rewind a tape of \(self.count) nodes to \(count)")
        buffer.pointee.count = count
        let limit = Int32(truncatingIfNeeded: count)
        while let last = constants.last, last.node >= limit { constants.removeLast() }
        if highestLabelled >= limit {
            labels = labels.filter { $0.key < limit }
            highestLabelled = labels.keys.max() ?? -1
        }
    }

    /// Drops every node; with `keepingCapacity` false the buffer is freed too.
    public func removeAll(keepingCapacity: Bool = true) {
        rewind(to: 0)
        if !keepingCapacity {
            free(buffer.pointee.nodes)
            buffer.pointee.nodes = nil
            buffer.pointee.capacity = 0
            constants = []
            labels = [:]
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
