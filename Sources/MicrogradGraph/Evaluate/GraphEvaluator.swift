import Micrograd

/// Runs a decoded graph on the engine: forward in spec order (already topological), then backward from the output.
public enum GraphEvaluator {
    /// `tape` is reused across requests (one per thread): it is cleared here, keeping its capacity,
    /// so a request allocates only its result arrays.
    public static func evaluate(_ spec: GraphSpec, on tape: Tape) -> EvaluatedGraph {
        tape.removeAll(keepingCapacity: true)
        let n = spec.count
        // Tape indices of spec nodes (the tape numbers nodes in append order, but we do not rely on it).
        var slot = [Int32](repeating: 0, count: n)
        spec.ops.withUnsafeBufferPointer { ops in
            spec.lhs.withUnsafeBufferPointer { lhs in
                spec.rhs.withUnsafeBufferPointer { rhs in
                    spec.values.withUnsafeBufferPointer { values in
                        for i in 0..<n {
                            let op = ops[i]
                            if op == .leaf {
                                slot[i] = tape.leaf(values[i])
                            } else {
                                let a = slot[Int(lhs[i])]
                                let b = rhs[i] < 0 ? -1 : slot[Int(rhs[i])]
                                slot[i] = tape.apply(op, a, b, constant: values[i])
                            }
                        }
                    }
                }
            }
        }
        var data = [Double](repeating: 0, count: n)
        var grad = [Double](repeating: 0, count: n)
        if n > 0 {
            tape.backward(from: slot[Int(spec.output)])
            for i in 0..<n {
                data[i] = tape.data(slot[i])
                grad[i] = tape.grad(slot[i])
            }
        }
        return EvaluatedGraph(spec: spec, data: data, grad: grad)
    }
}
