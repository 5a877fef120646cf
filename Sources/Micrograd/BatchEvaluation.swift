#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One leaf's values over a batch: the same number in every row, or one number per row.
public enum BatchColumn: Sendable, Equatable {
    case shared(Double)
    case rows([Double])
}

/// What a batch returns per requested gradient: a column (one number per row) or the sum over the rows.
public enum BatchReduction: Sendable, Equatable {
    case none
    /// The gradient of the summed output. Summed in a fixed order, so the bits do not depend on block size or
    /// machine: eight running sums by row index mod 8 (each `0 + g[j] + g[j+8] + ...` in row order), then
    /// `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`.
    case sum
}

/// The answer of ``CompiledGraph/evaluateBatch(rows:inputs:gradients:reduction:blockRows:)``: one array holding
/// the value column, then each requested gradient's column (or its sum), so a batch allocates once.
public struct BatchResult: Sendable, Equatable {
    public let rows: Int
    /// How many gradients were requested.
    public let gradientCount: Int
    public let reduction: BatchReduction
    /// `rows` values, then per requested gradient `rows` numbers (or 1 with ``BatchReduction/sum``).
    public let storage: [Double]
    /// Rows evaluated per block, and the scratch memory the evaluation used (it depends on the block and the
    /// node count, never on `rows`).
    public let blockRows: Int
    public let workingBytes: Int

    /// The output's value in row `r`.
    @inlinable public func value(_ r: Int) -> Double { storage[r] }
    /// Numbers per gradient: `rows`, or 1 when summed.
    @inlinable public var gradientLength: Int { reduction == .sum ? 1 : rows }
    /// Gradient `j` (in request order) in row `r` (r = 0 when summed).
    @inlinable public func gradient(_ j: Int, _ r: Int) -> Double { storage[rows + j * gradientLength + r] }
    /// Copies, for callers that want arrays.
    public var values: [Double] { Array(storage[0..<rows]) }
    public var gradients: [[Double]] {
        (0..<gradientCount).map { j in Array(storage[(rows + j * gradientLength)..<(rows + (j + 1) * gradientLength)]) }
    }
}

extension CompiledGraph {
    /// The rows of a block when none is asked for: as many as keep the scratch (a data and a gradient block
    /// per node that needs one) within about 192 KiB, between 16 and 256 rows.
    static func defaultBlockRows(slots: Int) -> Int {
        var rows = 256
        while rows > 16 && slots * rows * 8 > 192 * 1024 { rows /= 2 }
        return rows
    }

    /// Evaluates the graph over `rows` value sets: forward and backward, a block of rows at a time, each op one
    /// vectorised loop over the block (structure of arrays, eight rows per vector), with ``Rules``, the same
    /// code the single-row engine runs. Row r's value and gradients are bit for bit what ``evaluate(on:values:)``
    /// gives with row r's values.
    ///
    /// - Parameters:
    ///   - inputs: leaf node index -> its values (``BatchColumn/rows(_:)`` must hold `rows` numbers); other
    ///     leaves keep their registered values.
    ///   - gradients: leaves whose gradient is returned, in this order (0 for a leaf the output does not reach).
    /// Only the nodes the output depends on are computed, nodes that are the same in every row only once, and
    /// gradients only along paths to a requested leaf. Invalid arguments trap: callers validate untrusted input.
    public func evaluateBatch(
        rows: Int, inputs: [Int32: BatchColumn], gradients: [Int32], reduction: BatchReduction = .none,
        blockRows: Int? = nil
    ) -> BatchResult {
        precondition(rows >= 1, "A batch has at least one row")
        for (leaf, column) in inputs {
            precondition(leaf >= 0 && Int(leaf) < count && ops[Int(leaf)] == .leaf, "Input \(leaf) is not a leaf")
            if case .rows(let r) = column { precondition(r.count == rows, "Column \(leaf) has \(r.count) rows, not \(rows)") }
        }
        for leaf in gradients {
            precondition(leaf >= 0 && Int(leaf) < count && ops[Int(leaf)] == .leaf, "Gradient \(leaf) is not of a leaf")
        }
        let plan = BatchPlan(self, inputs: inputs, gradients: gradients)
        let block = blockRows ?? CompiledGraph.defaultBlockRows(slots: plan.slotCount)
        precondition(block >= 8 && block % 8 == 0, "Block rows must be a positive multiple of 8")
        return plan.run(self, rows: rows, inputs: inputs, gradients: gradients, reduction: reduction, blockRows: block)
    }
}

/// Where a kernel reads an operand: a block of rows, or one value for every row.
@usableFromInline
protocol RowSource {
    func load(_ k: Int) -> BatchVector
}

@usableFromInline
struct BlockRows: RowSource {
    @usableFromInline let base: UnsafePointer<BatchVector>
    @inlinable @inline(__always) init(_ base: UnsafePointer<BatchVector>) { self.base = base }
    @inlinable @inline(__always) func load(_ k: Int) -> BatchVector { base[k] }
}

@usableFromInline
struct SharedValue: RowSource {
    @usableFromInline let value: BatchVector
    @inlinable @inline(__always) init(_ value: Double) { self.value = BatchVector(value) }
    @inlinable @inline(__always) func load(_ k: Int) -> BatchVector { value }
}

/// Which nodes a batch computes, and where their rows live.
struct BatchPlan {
    let n: Int
    /// Nodes the output depends on (itself included).
    var needed: [Bool]
    /// Nodes whose value differs between rows (a row input, or computed from one).
    var varies: [Bool]
    /// The value of each node that is the same in every row (single-row rules, computed once).
    var shared: [Double]
    /// Nodes that depend on a requested leaf: the only ones whose gradient is needed.
    var wantsGrad: [Bool]
    /// Vector slot of each node's data block (-1: shared or not computed) and gradient block (-1: none).
    var dataSlot: [Int32]
    var gradSlot: [Int32]
    /// Whether the gradient contribution of node i to its first / second input is that input's first
    /// (in the single-row engine's order: descending node index, first input before second), which starts
    /// from 0 instead of reading the block.
    var firstToA: [Bool]
    var firstToB: [Bool]
    var slotCount: Int

    init(_ g: CompiledGraph, inputs: [Int32: BatchColumn], gradients: [Int32]) {
        n = g.count
        let out = Int(g.output)
        needed = [Bool](repeating: false, count: n)
        needed[out] = true
        for i in stride(from: out, through: 0, by: -1) where needed[i] {
            if g.lhs[i] >= 0 { needed[Int(g.lhs[i])] = true }
            if g.rhs[i] >= 0 { needed[Int(g.rhs[i])] = true }
        }
        varies = [Bool](repeating: false, count: n)
        shared = g.values
        wantsGrad = [Bool](repeating: false, count: n)
        for leaf in gradients { wantsGrad[Int(leaf)] = true }
        dataSlot = [Int32](repeating: -1, count: n)
        gradSlot = [Int32](repeating: -1, count: n)
        var slots: Int32 = 0
        for i in 0...out where needed[i] {
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            if g.ops[i] == .leaf {
                switch inputs[Int32(i)] {
                case .rows?: varies[i] = true
                case .shared(let v)?: shared[i] = v
                case nil: break
                }
            } else {
                varies[i] = varies[a] || (b >= 0 && varies[b])
                wantsGrad[i] = wantsGrad[a] || (b >= 0 && wantsGrad[b])
                if !varies[i] {
                    shared[i] = Rules.forward(g.ops[i], shared[a], b >= 0 ? shared[b] : 0, g.ops[i] == .powConst ? g.values[i] : 0)
                }
            }
            if varies[i] { dataSlot[i] = slots; slots += 1 }
            if wantsGrad[i] { gradSlot[i] = slots; slots += 1 }
        }
        slotCount = Int(slots)
        firstToA = [Bool](repeating: false, count: n)
        firstToB = [Bool](repeating: false, count: n)
        var touched = [Bool](repeating: false, count: n)
        touched[out] = true
        for i in stride(from: out, through: 0, by: -1) where needed[i] && wantsGrad[i] && g.ops[i] != .leaf {
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            if wantsGrad[a] { firstToA[i] = !touched[a]; touched[a] = true }
            if b >= 0 && wantsGrad[b] { firstToB[i] = !touched[b]; touched[b] = true }
        }
    }

    func run(
        _ g: CompiledGraph, rows: Int, inputs: [Int32: BatchColumn], gradients: [Int32], reduction: BatchReduction,
        blockRows: Int
    ) -> BatchResult {
        let vectorsPerBlock = blockRows / 8
        let scratchVectors = max(slotCount, 1) * vectorsPerBlock
        let scratch = UnsafeMutablePointer<BatchVector>.allocate(capacity: scratchVectors)
        scratch.initialize(repeating: BatchVector(0), count: scratchVectors)
        defer { scratch.deallocate() }
        func block(_ slot: Int32) -> UnsafeMutablePointer<BatchVector> { scratch + Int(slot) * vectorsPerBlock }

        let out = Int(g.output)
        let perRow = reduction == .none
        let gradientLength = perRow ? rows : 1
        var sums = [BatchVector](repeating: BatchVector(0), count: gradients.count)
        let rowInputs: [(slot: Int32, column: [Double])] = inputs.compactMap { leaf, column in
            if case .rows(let r) = column, needed[Int(leaf)] { (dataSlot[Int(leaf)], r) } else { nil }
        }
        // Where each requested gradient comes from; nil: the output does not reach the leaf, so it is 0, as in
        // the single-row engine.
        let gradientSources: [UnsafeMutablePointer<Double>?] = gradients.map { leaf in
            let slot = gradSlot[Int(leaf)]
            guard needed[Int(leaf)], slot >= 0 else { return nil }
            return UnsafeMutableRawPointer(block(slot)).assumingMemoryBound(to: Double.self)
        }
        let outputBlock: UnsafeMutablePointer<Double>? = dataSlot[out] >= 0
            ? UnsafeMutableRawPointer(block(dataSlot[out])).assumingMemoryBound(to: Double.self) : nil
        let forwardNodes = (0...out).filter { needed[$0] && varies[$0] && g.ops[$0] != .leaf }
        let backwardNodes = (0...out).reversed().filter { needed[$0] && wantsGrad[$0] && g.ops[$0] != .leaf }

        let size = rows + gradients.count * gradientLength
        let storage = [Double](unsafeUninitializedCapacity: size) { result, initialized in
            let result = result.baseAddress!
            var r0 = 0
            while r0 < rows {
                let length = min(blockRows, rows - r0)
                let vectors = (length + 7) / 8
                // Row inputs into their blocks; the last block's padding lanes are 0 (computed, never returned).
                for (slot, column) in rowInputs {
                    let target = UnsafeMutableRawPointer(block(slot)).assumingMemoryBound(to: Double.self)
                    column.withUnsafeBufferPointer { target.update(from: $0.baseAddress! + r0, count: length) }
                    if length < vectors * 8 { (target + length).update(repeating: 0, count: vectors * 8 - length) }
                }
                for i in forwardNodes {
                    forwardBlock(g, i, block(dataSlot[i]), vectors, block)
                }
                if gradSlot[out] >= 0 {
                    block(gradSlot[out]).update(repeating: BatchVector(1), count: vectors)
                }
                for i in backwardNodes {
                    backwardBlock(g, i, vectors, block)
                }
                if let outputBlock {
                    (result + r0).update(from: outputBlock, count: length)
                } else {
                    (result + r0).update(repeating: shared[out], count: length)
                }
                for (j, source) in gradientSources.enumerated() {
                    if perRow {
                        let column = result + rows + j * rows + r0
                        if let source { column.update(from: source, count: length) } else {
                            column.update(repeating: 0, count: length)
                        }
                    } else if let source {
                        let vectorsIn = UnsafeRawPointer(source).assumingMemoryBound(to: BatchVector.self)
                        var acc = sums[j]
                        for k in 0..<vectors {
                            let lanes = length - k * 8
                            if lanes >= 8 {
                                acc = acc + vectorsIn[k]
                            } else {
                                let mask = SIMD8<Int64>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8<Int64>(repeating: Int64(lanes))
                                acc = acc.replacing(with: acc + vectorsIn[k], where: mask)
                            }
                        }
                        sums[j] = acc
                    }
                }
                r0 += length
            }
            if !perRow {
                for j in gradients.indices {
                    let s = sums[j]
                    result[rows + j] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
                }
            }
            initialized = size
        }
        return BatchResult(rows: rows, gradientCount: gradients.count, reduction: reduction, storage: storage,
                           blockRows: blockRows, workingBytes: scratchVectors * MemoryLayout<BatchVector>.stride)
    }

    // MARK: kernels

    func forwardBlock(_ g: CompiledGraph, _ i: Int, _ target: UnsafeMutablePointer<BatchVector>, _ vectors: Int,
                      _ block: (Int32) -> UnsafeMutablePointer<BatchVector>) {
        let op = g.ops[i], a = Int(g.lhs[i]), b = Int(g.rhs[i])
        let c = op == .powConst ? g.values[i] : 0
        let xVaries = varies[a], yVaries = b >= 0 && varies[b]
        let y = b >= 0 ? b : a  // unary ops: y is not read; the single-row engine passes 0
        switch (xVaries, yVaries) {
        case (true, true):
            Kernels.forward(op, target, BlockRows(block(dataSlot[a])), BlockRows(block(dataSlot[y])), c, vectors)
        case (true, false):
            Kernels.forward(op, target, BlockRows(block(dataSlot[a])), SharedValue(b >= 0 ? shared[b] : 0), c, vectors)
        case (false, _):
            Kernels.forward(op, target, SharedValue(shared[a]), BlockRows(block(dataSlot[y])), c, vectors)
        }
    }

    func backwardBlock(_ g: CompiledGraph, _ i: Int, _ vectors: Int, _ block: (Int32) -> UnsafeMutablePointer<BatchVector>) {
        let op = g.ops[i], a = Int(g.lhs[i]), b = Int(g.rhs[i])
        let c = op == .powConst ? g.values[i] : 0
        let grad = UnsafePointer(block(gradSlot[i]))
        let toA = wantsGrad[a] ? block(gradSlot[a]) : nil
        let toB = b >= 0 && wantsGrad[b] ? block(gradSlot[b]) : nil
        let xVaries = varies[a], yVaries = b >= 0 && varies[b]
        let y = b >= 0 ? b : a
        let firstA = firstToA[i], firstB = firstToB[i]
        switch (xVaries, yVaries) {
        case (true, true):
            Kernels.backward(op, grad, BlockRows(block(dataSlot[a])), BlockRows(block(dataSlot[y])),
                             BlockRows(block(dataSlot[i])), c, toA, firstA, toB, firstB, vectors)
        case (true, false):
            Kernels.backward(op, grad, BlockRows(block(dataSlot[a])), SharedValue(b >= 0 ? shared[b] : 0),
                             BlockRows(block(dataSlot[i])), c, toA, firstA, toB, firstB, vectors)
        case (false, true):
            Kernels.backward(op, grad, SharedValue(shared[a]), BlockRows(block(dataSlot[y])),
                             BlockRows(block(dataSlot[i])), c, toA, firstA, toB, firstB, vectors)
        case (false, false):
            Kernels.backward(op, grad, SharedValue(shared[a]), SharedValue(b >= 0 ? shared[b] : 0),
                             SharedValue(shared[i]), c, toA, firstA, toB, firstB, vectors)
        }
    }
}

/// The loops. Each op is dispatched once per block to a loop specialised for it (the `switch` in ``Rules`` folds
/// away once `op` is a constant), so the loop body is just that op's rule over eight rows.
enum Kernels {
    static func forward<X: RowSource, Y: RowSource>(
        _ op: Op, _ target: UnsafeMutablePointer<BatchVector>, _ x: X, _ y: Y, _ c: Double, _ vectors: Int
    ) {
        @inline(__always) func run(_ op: Op) {
            for k in 0..<vectors { target[k] = Rules.forward(op, x.load(k), y.load(k), c) }
        }
        switch op {
        case .leaf: run(.leaf)
        case .add: run(.add)
        case .sub: run(.sub)
        case .mul: run(.mul)
        case .div: run(.div)
        case .neg: run(.neg)
        case .powConst: run(.powConst)
        case .pow: run(.pow)
        case .exp: run(.exp)
        case .log: run(.log)
        case .tanh: run(.tanh)
        case .relu: run(.relu)
        case .sigmoid: run(.sigmoid)
        }
    }

    /// Adds `d out/d input * grad` into the inputs' gradient blocks (`toA`, `toB`, nil where not wanted), or
    /// stores `0 + ...` where this is the input's first contribution, exactly as the single-row engine adds into
    /// a gradient that starts at 0.
    static func backward<X: RowSource, Y: RowSource, O: RowSource>(
        _ op: Op, _ grad: UnsafePointer<BatchVector>, _ x: X, _ y: Y, _ out: O, _ c: Double,
        _ toA: UnsafeMutablePointer<BatchVector>?, _ firstA: Bool,
        _ toB: UnsafeMutablePointer<BatchVector>?, _ firstB: Bool, _ vectors: Int
    ) {
        @inline(__always) func run(_ op: Op) {
            // One input at a time, first before second: when both are the same node, its second contribution
            // reads the first, as in the single-row engine.
            if let toA {
                if firstA {
                    for k in 0..<vectors {
                        toA[k] = BatchVector(0) + Rules.derivatives(op, x.load(k), y.load(k), out.load(k), c).dx * grad[k]
                    }
                } else {
                    for k in 0..<vectors {
                        toA[k] = toA[k] + Rules.derivatives(op, x.load(k), y.load(k), out.load(k), c).dx * grad[k]
                    }
                }
            }
            if let toB {
                if firstB {
                    for k in 0..<vectors {
                        toB[k] = BatchVector(0) + Rules.derivatives(op, x.load(k), y.load(k), out.load(k), c).dy * grad[k]
                    }
                } else {
                    for k in 0..<vectors {
                        toB[k] = toB[k] + Rules.derivatives(op, x.load(k), y.load(k), out.load(k), c).dy * grad[k]
                    }
                }
            }
        }
        switch op {
        case .leaf: run(.leaf)
        case .add: run(.add)
        case .sub: run(.sub)
        case .mul: run(.mul)
        case .div: run(.div)
        case .neg: run(.neg)
        case .powConst: run(.powConst)
        case .pow: run(.pow)
        case .exp: run(.exp)
        case .log: run(.log)
        case .tanh: run(.tanh)
        case .relu: run(.relu)
        case .sigmoid: run(.sigmoid)
        }
    }
}
