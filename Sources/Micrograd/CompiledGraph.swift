/// A graph in the form it was built: the tape's nodes in index order (a topological order), each an op over
/// earlier nodes, with the leaves' values and the `powConst` exponents. It is what a registered graph keeps,
/// so evaluating it again needs no decoding, sorting or id lookups, and what ``evaluateBatch(rows:inputs:gradients:reduction:blockRows:)``
/// runs over many value sets at once.
///
/// Node `i` is `ops[i]` over `lhs[i]` and `rhs[i]` (indices of earlier nodes, -1 where absent); `values[i]` is a
/// leaf's data or a `powConst` exponent (0 otherwise).
public struct CompiledGraph: Sendable, Equatable {
    public let ops: [Op]
    public let lhs: [Int32]
    public let rhs: [Int32]
    public let values: [Double]
    /// The node whose value is computed and whose gradient is taken.
    public let output: Int32

    /// Why arrays do not form a graph.
    public enum Invalid: Error, Equatable {
        case lengths
        case output(Int32)
        /// Node `node` has inputs that are missing, later than itself, or of the wrong number for its op.
        case inputs(node: Int)
    }

    /// Checks that the arrays describe a graph in topological order (every input an earlier node, as many
    /// as the op takes) with an existing output.
    public init(ops: [Op], lhs: [Int32], rhs: [Int32], values: [Double], output: Int32) throws(Invalid) {
        let n = ops.count
        guard lhs.count == n, rhs.count == n, values.count == n else { throw .lengths }
        guard output >= 0, Int(output) < n else { throw .output(output) }
        for i in 0..<n {
            let a = lhs[i], b = rhs[i], own = Int32(i)
            let ok = switch ops[i].arity {
            case 0: a == -1 && b == -1
            case 1: a >= 0 && a < own && b == -1
            default: a >= 0 && a < own && b >= 0 && b < own
            }
            guard ok else { throw .inputs(node: i) }
        }
        self.ops = ops
        self.lhs = lhs
        self.rhs = rhs
        self.values = values
        self.output = output
    }

    /// The nodes `0...output` of `tape` (everything `output` can depend on), as they are now.
    public init(tape: Tape, output: Int32) {
        let n = Int(output) + 1
        precondition(output >= 0 && n <= tape.count, "Output \(output) is not on a tape of \(tape.count) nodes")
        var ops: [Op] = [], lhs: [Int32] = [], rhs: [Int32] = [], values: [Double] = []
        ops.reserveCapacity(n); lhs.reserveCapacity(n); rhs.reserveCapacity(n); values.reserveCapacity(n)
        for i in 0..<Int32(n) {
            let op = tape.op(i), (a, b) = tape.inputs(i)
            ops.append(op); lhs.append(a); rhs.append(b)
            values.append(op == .leaf ? tape.data(i) : tape.constant(i) ?? 0)
        }
        self.ops = ops
        self.lhs = lhs
        self.rhs = rhs
        self.values = values
        self.output = output
    }

    public var count: Int { ops.count }

    /// Builds the graph on `tape` (emptied first, capacity kept) with `values` in place of the registered leaf
    /// values where given (node index -> value), then runs backward from the output: the single-row engine,
    /// the reference every batch row equals bit for bit. Tape node `i` is node `i`.
    public func evaluate(on tape: Tape, values overrides: [Int32: Double] = [:]) {
        tape.removeAll(keepingCapacity: true)
        tape.reserveCapacity(count)
        for i in 0..<count {
            let op = ops[i]
            if op == .leaf {
                _ = tape.leaf(overrides[Int32(i)] ?? values[i])
            } else {
                _ = tape.apply(op, lhs[i], rhs[i], constant: values[i])
            }
        }
        tape.backward(from: output)
    }
}
