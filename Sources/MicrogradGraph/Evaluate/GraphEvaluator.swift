import Micrograd

/// Runs a decoded graph on the engine: forward in spec order (already topological), then backward from the output.
public enum GraphEvaluator {
    /// Evaluates on this thread's tape (``Tape/withCurrentEmptied(_:)`` decides what memory it keeps).
    public static func evaluate(_ spec: GraphSpec) -> EvaluatedGraph {
        Tape.withCurrentEmptied { evaluate(spec, on: $0) }
    }

    /// `tape` is reused across requests (one per thread): it is emptied here, keeping its capacity, so a
    /// request allocates only its result arrays. After emptying, the tape numbers nodes 0, 1, ... in append
    /// order, so spec node `i` is tape node `i` and inputs need no translation.
    public static func evaluate(_ spec: GraphSpec, on tape: Tape) -> EvaluatedGraph {
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
        guard n > 0 else { return EvaluatedGraph(spec: spec, data: [], grad: []) }
        tape.backward(from: spec.output)
        // `map` allocates through the specialised path (see `Array.filled`).
        let data = (0..<n).map { tape.data(Int32($0)) }
        let grad = (0..<n).map { tape.grad(Int32($0)) }
        return EvaluatedGraph(spec: spec, data: data, grad: grad)
    }
}
