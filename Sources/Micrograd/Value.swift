/// A scalar in a differentiable computation: micrograd's `Value`, as a handle into a ``Tape``.
///
///     let a = Value(2.0, label: "a"), b = Value(-3.0, label: "b"), c = Value(10.0, label: "c")
///     let d = a * b + c       // print(d) shows Value(data=4.0)
///     d.backward()            // a.grad == -3, b.grad == 2, c.grad == 1
///
/// A `Value` is two words (tape, index) and copying it costs nothing: the node itself (data, grad, op,
/// inputs) lives on the tape. New values go on the tape of their inputs; leaves made with `Value(x)` go on
/// ``Tape/current``, this thread's tape. See ``Tape`` for how a training loop keeps memory flat.
///
/// **Why the tape reference is `unowned(unsafe)`.** A strong reference would make every handle copy
/// and every operator retain and release the tape (atomic operations); on the benchmark's W3 workload
/// (a million multiply-adds) that cost TODO-measured. Thread tapes live as long as their thread,
/// so handles into them can never dangle. A tape you create yourself (`Value(x, on: tape)`) must outlive
/// the values made on it, as a Stan arena outlives its `var`s.
public struct Value {
    @usableFromInline unowned(unsafe) let tape: Tape
    /// This value's node index on its tape.
    public let index: Int32

    /// The handle for node `index` of `tape`.
    @inlinable @inline(__always)
    public init(index: Int32, on tape: Tape) {
        self.tape = tape
        self.index = index
    }

    /// A new leaf holding `data` on this thread's tape (``Tape/current``).
    @inlinable @inline(__always)
    public init(_ data: Double, label: String? = nil) {
        self.init(data, label: label, on: Tape.current)
    }

    /// A new leaf holding `data` on `tape`.
    @inlinable @inline(__always)
    public init(_ data: Double, label: String? = nil, on tape: Tape) {
        self.tape = tape
        self.index = tape.leaf(data)
        if let label { tape.setLabel(index, label) }
    }

    /// The tape this value lives on.
    public var onTape: Tape { tape }

    /// The forward value. Setting it changes this node only (nodes computed from it keep their values).
    @inlinable public var data: Double {
        get { tape.data(index) }
        nonmutating set { tape.setData(index, newValue) }
    }

    /// d(output)/d(self), accumulated by the last ``backward()`` calls.
    @inlinable public var grad: Double {
        get { tape.grad(index) }
        nonmutating set { tape.setGrad(index, newValue) }
    }

    /// The op that produced this value (`.leaf` for a leaf).
    public var op: Op { tape.op(index) }

    /// The exponent of a `pow` with a constant exponent, else nil.
    public var constant: Double? { tape.constant(index) }

    /// The values this one was computed from, in order (`a - b` gives `[a, b]`; `a + a` gives `[a, a]`).
    public var inputs: [Value] {
        let (a, b) = tape.inputs(index)
        if a < 0 { return [] }
        if b < 0 { return [Value(index: a, on: tape)] }
        return [Value(index: a, on: tape), Value(index: b, on: tape)]
    }

    /// An optional name, for drawings.
    public var label: String? {
        get { tape.label(index) }
        nonmutating set { tape.setLabel(index, newValue) }
    }

    /// Seeds this value's grad with 1 and accumulates gradients into all its ancestors (see ``Tape/backward(from:)``).
    public func backward() { tape.backward(from: index) }

    /// Sets the grad of this value and of all its ancestors to 0, so ``backward()`` can run again.
    public func zeroGrad() { tape.zeroGrad(from: index) }

    /// This value and all its ancestors, inputs before the values that use them (ascending tape order).
    public func topologicalOrder() -> [Value] {
        tape.ancestors(of: index).map { Value(index: $0, on: tape) }
    }
}

extension Value: CustomStringConvertible {
    /// `Value(data=4.0)`, as micrograd prints it.
    public var description: String { "Value(data=\(data))" }
}

extension Value: Hashable {
    /// Two handles are equal when they name the same node of the same tape.
    @inlinable public static func == (l: Value, r: Value) -> Bool { l.tape === r.tape && l.index == r.index }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(tape))
        hasher.combine(index)
    }
}
