import Micrograd

/// Runs a decoded graph on the engine: forward in spec order (already topological), then backward from the output.
public enum GraphEvaluator {
    /// Evaluates on this thread's tape (``Tape/withCurrentEmptied(_:)`` decides what memory it keeps).
    /// Takes the spec: it moves into the result instead of being copied (a copy retained and later released
    /// each of its seven columns, on every request).
    public static func evaluate(_ spec: consuming GraphSpec) -> EvaluatedGraph {
        let (data, grad) = Tape.withCurrentEmptied { run(spec, on: $0) }
        return EvaluatedGraph(spec: spec, data: data, grad: grad)
    }

    /// `tape` is reused across requests (one per thread): it is emptied here, keeping its capacity, so a
    /// request allocates only its result arrays. After emptying, the tape numbers nodes 0, 1, ... in append
    /// order, so spec node `i` is tape node `i` and inputs need no translation.
    public static func evaluate(_ spec: consuming GraphSpec, on tape: Tape) -> EvaluatedGraph {
        let (data, grad) = run(spec, on: tape)
        return EvaluatedGraph(spec: spec, data: data, grad: grad)
    }

    /// The forward and backward pass: each node's data and gradient, in spec order.
    private static func run(_ spec: borrowing GraphSpec, on tape: Tape) -> (data: [Double], grad: [Double]) {
        tape.removeAll(keepingCapacity: true)
        let n = spec.count
        tape.reserveCapacity(n)
        spec.ops.withUnsafeBufferPointer { ops in
            spec.lhs.withUnsafeBufferPointer { lhs in
                spec.rhs.withUnsafeBufferPointer { rhs in
                    spec.values.withUnsafeBufferPointer { values in
                        for i in 0..<n {
                            let op = ops[i]
                            let node = op == .leaf ? tape.leaf(values[i]) : tape.apply(op, lhs[i], rhs[i], constant: values[i])
                            assert(Int(node) == i, "tape numbering out of step with the spec")
                        }
                    }
                }
            }
        }
        guard n > 0 else { return ([], []) }
        tape.backward(from: spec.output)
        // `map` allocates through the specialised path (see `Array.filled`).
        return ((0..<n).map { tape.data(Int32($0)) }, (0..<n).map { tape.grad(Int32($0)) })
    }
}
