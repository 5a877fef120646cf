/// How a node names its two inputs in each shape a graph passes through, and the one place each conversion happens.
///
/// | shape                          | slots            | an input                       | absent | also                          |
/// |--------------------------------|------------------|--------------------------------|--------|-------------------------------|
/// | decoder, request order         | `nodeLHS/RHS`    | id symbol (>= 0)               | -1     | literal `k`: `constantRef(k)` |
/// | ``GraphSpec``, topological     | `lhs/rhs`        | index of an earlier spec node  | -1     |                               |
/// | engine tape (`Micrograd.Tape`) | `a/b`            | index of an earlier tape node  | -1     | `powConst`'s exponent in `b`  |
///
/// - decoder -> spec: ``specIndex(ofRef:definedAt:userCount:)`` when the decoder finishes (literals become
///   constant leaves after the request's own nodes), then the topological order renumbers them.
/// - spec -> tape: the identity. `GraphEvaluator` appends nodes in spec order to an emptied tape, so spec node `i`
///   is tape node `i`; `Tape.apply(op, lhs, rhs, constant:)` keeps a `powConst` exponent in its own table.
public enum InputSlot {
    /// "No input here", in every shape: a leaf's two slots, a one-input op's second.
    public static let absent: Int32 = -1

    /// The decoder's reference to number literal `k` (the `k`-th constant of the request, from 0).
    static func constantRef(_ k: Int) -> Int32 { -Int32(k) - 2 }

    /// A decoder reference as a node number before sorting: an id's defining node, literal `k` as node
    /// `userCount + k`, ``absent`` unchanged.
    @inline(__always)
    static func specIndex(ofRef ref: Int32, definedAt: Column<Int32>, userCount: Int) -> Int32 {
        if ref >= 0 { return definedAt[Int(ref)] }
        if ref == absent { return absent }
        return Int32(userCount) + (-ref - 2)
    }
}
