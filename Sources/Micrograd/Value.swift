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
/// **Why a `Value` holds a raw pointer, not the `Tape` object.** A class reference (even `unowned(unsafe)`,
/// which Swift still converts to a strong reference, retained and released, around each call) costs atomic
/// reference counting on every operator; the handle is a trivial struct (storage pointer, index), so copying,
/// combining and dropping values never touches a reference count. Measured on the benchmark's W1 (a 100,000-step
/// tanh chain) forward: 13.6 ns/node with an `unowned(unsafe)` tape reference, 8.8 with the pointer (C tape: 7.2).
/// The price is Stan's: the tape must outlive its values. Thread tapes (``Tape/current``) live as long as
/// their thread; a tape you create yourself (`Value(x, on: tape)`) must outlive the values made on it (Swift may
/// release an object after its last use: wrap such work in `withExtendedLifetime(tape) { ... }`). A value whose
/// tape was released traps when read; it never reads freed memory (see `StoragePool`).
public struct Value {
    @usableFromInline let handle: TapeHandle
    /// This value's node index on its tape.
    public let index: Int32

    @inlinable @inline(__always)
    init(_ handle: TapeHandle, _ index: Int32) {
        self.handle = handle
        self.index = index
    }

    /// The handle for node `index` of `tape`.
    @inlinable
    public init(index: Int32, on tape: Tape) {
        precondition(index >= 0 && Int(index) < tape.count, "Node index \(index) out of range")
        self.init(tape.handle, index)
    }

    /// A new leaf holding `data` on this thread's tape (``Tape/current``).
    @inlinable @inline(__always)
    public init(_ data: Double, label: String? = nil) {
        let tape = TapeHandle.current
        self.init(tape, tape.leaf(data))
        if let label { tape.setLabel(index, label) }
    }

    /// A new leaf holding `data` on `tape`.
    @inlinable @inline(__always)
    public init(_ data: Double, label: String? = nil, on tape: Tape) {
        self.init(tape.handle, tape.handle.leaf(data))
        if let label { tape.setLabel(index, label) }
    }

    /// The tape this value lives on (traps if that tape was released).
    public var tape: Tape { handle.tape }

    /// The forward value. Setting it changes this node only (nodes computed from it keep their values).
    @inlinable public var data: Double {
        get { handle.node(index).pointee.data }
        nonmutating set { handle.node(index).pointee.data = newValue }
    }

    /// d(output)/d(self), accumulated by the last ``backward()`` calls.
    @inlinable public var grad: Double {
        get { handle.node(index).pointee.grad }
        nonmutating set { handle.node(index).pointee.grad = newValue }
    }

    /// The op that produced this value (`.leaf` for a leaf).
    public var op: Op { handle.node(index).pointee.op }

    /// The exponent of a `pow` with a constant exponent, else nil.
    public var constant: Double? { handle.constant(index) }

    /// The values this one was computed from, in order (`a - b` gives `[a, b]`; `a + a` gives `[a, a]`).
    public var inputs: [Value] {
        let n = handle.node(index).pointee
        if n.a < 0 { return [] }
        if n.b < 0 { return [Value(handle, n.a)] }
        return [Value(handle, n.a), Value(handle, n.b)]
    }

    /// An optional name, for drawings.
    public var label: String? {
        get { handle.label(index) }
        nonmutating set { handle.setLabel(index, newValue) }
    }

    /// Seeds this value's grad with 1 and accumulates gradients into all its ancestors (see ``Tape/backward(from:)``).
    public func backward() { handle.backward(from: index) }

    /// Sets the grad of this value and of all its ancestors to 0, so ``backward()`` can run again.
    public func zeroGrad() { handle.tape.zeroGrad(from: index) }

    /// This value and all its ancestors, inputs before the values that use them (ascending tape order).
    public func topologicalOrder() -> [Value] {
        handle.ancestors(of: index).map { Value(handle, $0) }
    }
}

extension Value: CustomStringConvertible {
    /// `Value(data=4.0)`, as micrograd prints it.
    public var description: String { "Value(data=\(data))" }
}

extension Value: Hashable {
    /// Two handles are equal when they name the same node of the same tape.
    @inlinable public static func == (l: Value, r: Value) -> Bool { l.handle == r.handle && l.index == r.index }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(handle.storage)
        hasher.combine(index)
    }
}
