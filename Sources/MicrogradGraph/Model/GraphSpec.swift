import Micrograd

/// A graph request after decoding and validation, nodes in topological order (inputs before users).
///
/// Struct-of-arrays on purpose: a 1,000,000-node request must not cost a heap object per node.
/// Node `i` is `ops[i]` over inputs `lhs[i]`, `rhs[i]` (indices of earlier nodes, `InputSlot.absent` when absent);
/// `values[i]` is a leaf's data or a `powConst` exponent.
public struct GraphSpec: Sendable, Equatable {
    public var ids: [String]
    public var labels: [String?]
    public var ops: [Op]
    public var lhs: [Int32]
    public var rhs: [Int32]
    public var values: [Double]
    /// True for leaves the request wrote as number literals (an input `2`, or a literal in an expression).
    public var isConstant: [Bool]
    /// Index of the node whose gradient is taken.
    public var output: Int32

    public init() {
        self.init(ids: [], labels: [], ops: [], lhs: [], rhs: [], values: [], isConstant: [], output: -1)
    }

    /// A spec from whole columns (all of one length, in topological order). No default values on the properties:
    /// with them, this initializer built the spec in a temporary and copied it out (a retain and a release of
    /// every column, on every request).
    public init(ids: [String], labels: [String?], ops: [Op], lhs: [Int32], rhs: [Int32], values: [Double],
                isConstant: [Bool], output: Int32) {
        self.ids = ids; self.labels = labels; self.ops = ops; self.lhs = lhs; self.rhs = rhs
        self.values = values; self.isConstant = isConstant; self.output = output
    }

    public var count: Int { ops.count }

    public mutating func reserveCapacity(_ n: Int) {
        ids.reserveCapacity(n); labels.reserveCapacity(n); ops.reserveCapacity(n)
        lhs.reserveCapacity(n); rhs.reserveCapacity(n); values.reserveCapacity(n); isConstant.reserveCapacity(n)
    }

    /// Appends a node; returns its index. Inputs must already be in the spec.
    @discardableResult
    public mutating func append(
        id: String, label: String? = nil, op: Op, lhs: Int32 = InputSlot.absent, rhs: Int32 = InputSlot.absent,
        value: Double = 0, isConstant: Bool = false
    ) -> Int32 {
        ids.append(id); labels.append(label); ops.append(op)
        self.lhs.append(lhs); self.rhs.append(rhs); values.append(value); self.isConstant.append(isConstant)
        return Int32(ops.count - 1)
    }

    /// Bytes one node takes in the columns above (strings' out-of-line storage not included).
    public static var bytesPerNode: Int {
        MemoryLayout<String>.stride + MemoryLayout<String?>.stride + MemoryLayout<Op>.stride
            + 2 * MemoryLayout<Int32>.stride + MemoryLayout<Double>.stride + MemoryLayout<Bool>.stride
    }

    /// What the spec holds in memory, roughly: its columns plus the out-of-line bytes of ids and labels too long
    /// to be stored inside a String (over 15 UTF-8 bytes).
    public var estimatedBytes: Int {
        var bytes = count * Self.bytesPerNode + 256
        for id in ids where id.utf8.count > 15 { bytes += id.utf8.count }
        for case let label? in labels where label.utf8.count > 15 { bytes += label.utf8.count }
        return bytes
    }
}

/// A spec after the forward and backward pass: `data[i]`, `grad[i]` belong to `spec` node `i`.
/// `grad[i]` is d output / d node i, 0 where node i is not an ancestor of the output.
public struct EvaluatedGraph: Sendable {
    public var spec: GraphSpec
    public var data: [Double]
    public var grad: [Double]

    public init(spec: GraphSpec, data: [Double], grad: [Double]) {
        self.spec = spec; self.data = data; self.grad = grad
    }

    public var outputValue: Double { data[Int(spec.output)] }

    /// What the graph holds in memory, roughly: the spec and its two result columns.
    public var estimatedBytes: Int { spec.estimatedBytes + spec.count * 2 * MemoryLayout<Double>.stride }
}
