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
    /// per node that needs one) within 1 MiB (L2), between 16 and 256 rows. On the 979-node MLP (1,284 blocks)
    /// that is 64 rows, which ran 1.5-2x faster than 16 (per-op overhead) and no slower than 128.
    static func defaultBlockRows(slots: Int) -> Int {
        var rows = 256
        while rows > 16 && slots * rows * 8 > 1 << 20 { rows /= 2 }
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
        // A batch smaller than a block gets a block its size (rounded up to a vector): less scratch for big graphs.
        let block = blockRows ?? min(CompiledGraph.defaultBlockRows(slots: plan.slotCount), (rows + 7) / 8 * 8)
        precondition(block >= 8 && block % 8 == 0, "Block rows must be a positive multiple of 8")
        return plan.run(self, rows: rows, inputs: inputs, gradients: gradients, reduction: reduction, blockRows: block)
    }
}

/// Where a kernel reads an operand: a block of rows, or one value for every row.
@usableFromInline
protocol RowSource {
    func load(_ k: Int) -> BatchVector
}

/// A block of rows: scratch, or (in full blocks) the caller's column or the answer's memory in place, so
/// rows are not copied in and out. Those need not be 64-byte aligned, hence unaligned loads and stores.
@usableFromInline
struct BlockRows: RowSource {
    @usableFromInline let base: UnsafeMutableRawPointer
    @inlinable @inline(__always) init(_ base: UnsafeMutableRawPointer) { self.base = base }
    @inlinable @inline(__always) func load(_ k: Int) -> BatchVector {
        UnsafeRawPointer(base).loadUnaligned(fromByteOffset: k &* 64, as: BatchVector.self)
    }
    @inlinable @inline(__always) func store(_ k: Int, _ v: BatchVector) {
        base.storeBytes(of: v, toByteOffset: k &* 64, as: BatchVector.self)
    }
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
    /// Whether node i hands its gradient block to its first input instead of adding into that input's block:
    /// see the slot assignment.
    var handsToA: [Bool]
    /// Whether node i (an add) hands it to its second input too.
    var handsToB: [Bool]
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
        }
        firstToA = [Bool](repeating: false, count: n)
        firstToB = [Bool](repeating: false, count: n)
        var touched = [Bool](repeating: false, count: n)
        touched[out] = true
        for i in stride(from: out, through: 0, by: -1) where needed[i] && wantsGrad[i] && g.ops[i] != .leaf {
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            if wantsGrad[a] { firstToA[i] = !touched[a]; touched[a] = true }
            if b >= 0 && wantsGrad[b] { firstToB[i] = !touched[b]; touched[b] = true }
        }
        // Blocks. A gradient is never -0 (it starts as 0 + v, which is not, and a sum is -0 only when both terms
        // are), so where an add or a sub makes the first contribution to its first input, 0 + 1 * grad is grad
        // bit for bit: that input takes over the node's gradient block (nothing reads the node's gradient after
        // its own step) instead of a loop copying it. Chains of sums (a neuron's, a layer's) share one block.
        // An add whose second input gets no other contribution hands the block to that input too (0 + 1 * grad
        // is grad again), so both inputs read one block, a neuron's terms and bias the sum's gradient: one
        // copy loop less per term. A block two nodes share must stay as it is until both are done, so it goes
        // to nodes that get no other contribution: the second input, the first when it shares, and (down a
        // chain) every node handed a shared block.
        var contributions = [Int](repeating: 0, count: n)
        for i in 0...out where needed[i] && wantsGrad[i] && g.ops[i] != .leaf {
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            if wantsGrad[a] { contributions[a] += 1 }
            if b >= 0 && wantsGrad[b] { contributions[b] += 1 }
        }
        handsToA = [Bool](repeating: false, count: n)
        handsToB = [Bool](repeating: false, count: n)
        dataSlot = [Int32](repeating: -1, count: n)
        gradSlot = [Int32](repeating: -1, count: n)
        var slots: Int32 = 0
        var sharedSlot: [Bool] = []
        for i in 0...out where needed[i] && varies[i] { dataSlot[i] = slots; slots += 1 }
        let dataSlots = slots
        for i in stride(from: out, through: 0, by: -1) where needed[i] && wantsGrad[i] {
            if gradSlot[i] < 0 {
                gradSlot[i] = slots; slots += 1
                sharedSlot.append(false)
            }
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            let slot = Int(gradSlot[i] - dataSlots)
            if (g.ops[i] == .add || g.ops[i] == .sub) && firstToA[i] && (!sharedSlot[slot] || contributions[a] == 1) {
                handsToA[i] = true
                gradSlot[a] = gradSlot[i]
            }
            if g.ops[i] == .add && firstToB[i] && contributions[b] == 1 && (!handsToA[i] || contributions[a] == 1) {
                handsToB[i] = true
                gradSlot[b] = gradSlot[i]
                sharedSlot[slot] = true
            }
        }
        slotCount = Int(slots)
    }

    func run(
        _ g: CompiledGraph, rows: Int, inputs: [Int32: BatchColumn], gradients: [Int32], reduction: BatchReduction,
        blockRows: Int
    ) -> BatchResult {
        let blockBytes = blockRows * 8
        let slots = max(slotCount, 1)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: slots * blockBytes, alignment: 64)
        scratch.initializeMemory(as: Double.self, repeating: 0, count: slots * blockRows)
        defer { scratch.deallocate() }
        // Where each slot's rows are in the current block: its scratch block, or memory used in place.
        let bases = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: slots)
        defer { bases.deallocate() }
        func resetBases() { for s in 0..<slots { bases[s] = scratch + s * blockBytes } }
        resetBases()

        let out = Int(g.output)
        let perRow = reduction == .none
        let gradientLength = perRow ? rows : 1
        // Running sums for `.sum` (unsafe memory, like everything the block loop touches: no reference counting
        // per block, whose atomic operations also waited for the block's stores to drain).
        let sums = UnsafeMutablePointer<BatchVector>.allocate(capacity: max(gradients.count, 1))
        sums.initialize(repeating: BatchVector(0), count: max(gradients.count, 1))
        defer { sums.deallocate() }
        // Row inputs the output depends on; the arrays stay alive in `inputs` for the whole call.
        let rowColumns: [(slot: Int32, column: [Double])] = inputs.compactMap { leaf, column in
            guard needed[Int(leaf)], case .rows(let r) = column else { return nil }
            return (dataSlot[Int(leaf)], r)
        }
        // Requested gradients: the slot each is read from (-1: the output does not reach the leaf, so it is 0,
        // as in the single-row engine), and whether it is that slot's first request (written in place).
        let gradientSlots = gradients.map { leaf in needed[Int(leaf)] ? gradSlot[Int(leaf)] : -1 }
        let inPlace = gradientSlots.indices.map { j in gradientSlots[j] >= 0 && !gradientSlots[..<j].contains(gradientSlots[j]) }
        let seedSlot = gradSlot[out]
        // The output's gradient block holds ones. Unless the output is a leaf or hands the block on (then its
        // inputs add into it, or it is an answer column), only the output's own step reads it: filled once here,
        // not per block.
        let seedOnce = seedSlot >= 0 && g.ops[out] != .leaf && !handsToA[out] && !handsToB[out]
        if seedOnce {
            (scratch + Int(seedSlot) * blockBytes).initializeMemory(as: Double.self, repeating: 1, count: blockRows)
        }
        let forward = forwardSteps(g), backward = backwardSteps(g)
        let outputSlot = dataSlot[out]
        // A row-input leaf as the output is read from its column, so its value is copied, not computed in place.
        let outputInPlace = outputSlot >= 0 && g.ops[out] != .leaf

        let size = rows + gradients.count * gradientLength
        let storage = [Double](unsafeUninitializedCapacity: size) { result, initialized in
            let result = UnsafeMutableRawPointer(result.baseAddress!)
            adviseHugePages(result, byteCount: size * 8)
            withColumnPointers(rowColumns.map(\.column)) { columns in
                // Full blocks write the answer in place: a short first block starts every full one on a 64-byte
                // boundary of it, so that no vector store straddles two cache lines (the gradient columns share
                // the value column's offset when `rows` is a multiple of 8). Not with `.sum`, whose running sums
                // go by row index mod 8.
                let lead = perRow ? (64 - Int(bitPattern: result) & 63) % 64 / 8 : 0
                var r0 = 0
                while r0 < rows {
                    let length = min(r0 == 0 && lead > 0 ? lead : blockRows, rows - r0)
                    let vectors = (length + 7) / 8
                    let full = length == blockRows
                    if full {
                        // In place: inputs read from the columns, the value and per-row gradients written to the answer.
                        for (c, input) in rowColumns.enumerated() { bases[Int(input.slot)] = columns[c] + r0 * 8 }
                        if outputInPlace { bases[Int(outputSlot)] = result + r0 * 8 }
                        if perRow {
                            for (j, slot) in gradientSlots.enumerated() where inPlace[j] {
                                bases[Int(slot)] = result + (rows + j * rows + r0) * 8
                            }
                        }
                    } else {
                        resetBases()
                        // The last block's padding lanes are 0 (computed, never returned).
                        for (c, input) in rowColumns.enumerated() {
                            let target = bases[Int(input.slot)]
                            target.copyMemory(from: columns[c] + r0 * 8, byteCount: length * 8)
                            (target + length * 8).initializeMemory(as: Double.self, repeating: 0, count: vectors * 8 - length)
                        }
                    }
                    forward.withUnsafeBufferPointer { steps in
                        for step in steps { step.run(bases, vectors) }
                    }
                    if seedSlot >= 0 && !seedOnce {
                        let seed = BlockRows(bases[Int(seedSlot)])
                        for k in 0..<vectors { seed.store(k, BatchVector(1)) }
                    }
                    backward.withUnsafeBufferPointer { steps in
                        for step in steps { step.run(bases, vectors) }
                    }
                    if outputSlot < 0 {
                        (result + r0 * 8).initializeMemory(as: Double.self, repeating: shared[out], count: length)
                    } else if !full || !outputInPlace {
                        (result + r0 * 8).copyMemory(from: bases[Int(outputSlot)], byteCount: length * 8)
                    }
                    for (j, slot) in gradientSlots.enumerated() {
                        if perRow {
                            let column = result + (rows + j * rows + r0) * 8
                            if slot < 0 {
                                column.initializeMemory(as: Double.self, repeating: 0, count: length)
                            } else if !full || !inPlace[j] {
                                column.copyMemory(from: bases[Int(slot)], byteCount: length * 8)
                            }
                        } else if slot >= 0 {
                            let source = BlockRows(bases[Int(slot)])
                            var acc = sums[j]
                            for k in 0..<vectors {
                                let lanes = length - k * 8
                                if lanes >= 8 {
                                    acc = acc + source.load(k)
                                } else {
                                    let mask = SIMD8<Int64>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8<Int64>(repeating: Int64(lanes))
                                    acc = acc.replacing(with: acc + source.load(k), where: mask)
                                }
                            }
                            sums[j] = acc
                        }
                    }
                    r0 += length
                }
            }
            if !perRow {
                let sumsAt = result.assumingMemoryBound(to: Double.self) + rows
                for j in gradients.indices {
                    let s = sums[j]
                    sumsAt[j] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
                }
            }
            initialized = size
        }
        return BatchResult(rows: rows, gradientCount: gradients.count, reduction: reduction, storage: storage,
                           blockRows: blockRows, workingBytes: slots * blockBytes)
    }

    // MARK: steps

    /// One op of the forward sweep, resolved once per batch: where it writes, where it reads (a slot, or -1 and
    /// a value shared by every row).
    struct ForwardStep {
        var op: Op
        var target: Int32
        var x: Int32, y: Int32
        var xShared: Double, yShared: Double
        var c: Double
    }

    /// One node of the backward sweep: its gradient slot, its inputs and value (slots or shared values), and the
    /// gradient slots it adds into (-1: not wanted).
    struct BackwardStep {
        var op: Op
        var grad: Int32
        var x: Int32, y: Int32, out: Int32
        var xShared: Double, yShared: Double, outShared: Double
        var c: Double
        var toA: Int32, toB: Int32
        var firstA: Bool, firstB: Bool
    }

    func forwardSteps(_ g: CompiledGraph) -> [ForwardStep] {
        (0...Int(g.output)).compactMap { i in
            guard needed[i], varies[i], g.ops[i] != .leaf else { return nil }
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            // Unary ops read no y; the single-row engine passes 0.
            return ForwardStep(op: g.ops[i], target: dataSlot[i], x: dataSlot[a], y: b >= 0 ? dataSlot[b] : -1,
                               xShared: shared[a], yShared: b >= 0 ? shared[b] : 0,
                               c: g.ops[i] == .powConst ? g.values[i] : 0)
        }
    }

    func backwardSteps(_ g: CompiledGraph) -> [BackwardStep] {
        (0...Int(g.output)).reversed().compactMap { i in
            guard needed[i], wantsGrad[i], g.ops[i] != .leaf else { return nil }
            let a = Int(g.lhs[i]), b = Int(g.rhs[i])
            return BackwardStep(
                op: g.ops[i], grad: gradSlot[i], x: dataSlot[a], y: b >= 0 ? dataSlot[b] : -1, out: dataSlot[i],
                xShared: shared[a], yShared: b >= 0 ? shared[b] : 0, outShared: shared[i],
                c: g.ops[i] == .powConst ? g.values[i] : 0,
                toA: wantsGrad[a] && !handsToA[i] ? gradSlot[a] : -1, toB: b >= 0 && wantsGrad[b] && !handsToB[i] ? gradSlot[b] : -1,
                firstA: firstToA[i], firstB: firstToB[i])
        }
    }
}

extension BatchPlan.ForwardStep {
    @inline(__always)
    func run(_ bases: UnsafeMutablePointer<UnsafeMutableRawPointer>, _ vectors: Int) {
        func block(_ slot: Int32) -> BlockRows { BlockRows(bases[Int(slot)]) }
        let target = block(self.target)
        switch (x >= 0, y >= 0) {
        case (true, true): StaticOps.run(op, Kernels.Forward(target: target, x: block(x), y: block(y), c: c, vectors: vectors))
        case (true, false):
            StaticOps.run(op, Kernels.Forward(target: target, x: block(x), y: SharedValue(yShared), c: c, vectors: vectors))
        case (false, true):
            StaticOps.run(op, Kernels.Forward(target: target, x: SharedValue(xShared), y: block(y), c: c, vectors: vectors))
        case (false, false): preconditionFailure("A node computed per row has an input that varies")
        }
    }
}

extension BatchPlan.BackwardStep {
    @inline(__always)
    func run(_ bases: UnsafeMutablePointer<UnsafeMutableRawPointer>, _ vectors: Int) {
        func block(_ slot: Int32) -> BlockRows { BlockRows(bases[Int(slot)]) }
        let grad = block(self.grad)
        let toA = self.toA >= 0 ? block(self.toA) : nil, toB = self.toB >= 0 ? block(self.toB) : nil
        switch (x >= 0, y >= 0) {
        case (true, true):
            StaticOps.run(op, Kernels.Backward(grad: grad, x: block(x), y: block(y), out: block(out), c: c,
                                               toA: toA, firstA: firstA, toB: toB, firstB: firstB, vectors: vectors))
        case (true, false):
            StaticOps.run(op, Kernels.Backward(grad: grad, x: block(x), y: SharedValue(yShared), out: block(out), c: c,
                                               toA: toA, firstA: firstA, toB: toB, firstB: firstB, vectors: vectors))
        case (false, true):
            StaticOps.run(op, Kernels.Backward(grad: grad, x: SharedValue(xShared), y: block(y), out: block(out), c: c,
                                               toA: toA, firstA: firstA, toB: toB, firstB: firstB, vectors: vectors))
        case (false, false):
            StaticOps.run(op, Kernels.Backward(grad: grad, x: SharedValue(xShared), y: SharedValue(yShared),
                                               out: SharedValue(outShared), c: c,
                                               toA: toA, firstA: firstA, toB: toB, firstB: firstB, vectors: vectors))
        }
    }
}

/// An op known at compile time. The kernels are generic over one, so that each op gets a loop of its own with
/// the `switch` in ``Rules`` folded away. (With the op a runtime argument, the compiler left that `switch` inside
/// some backward loops: an indirect jump per eight rows.)
protocol StaticOp {
    static var op: Op { get }
}

/// A loop to run with an op known at compile time (what a generic closure would be).
protocol OpKernel {
    func run<O: StaticOp>(_ op: O.Type)
}

enum StaticOps {
    enum Leaf: StaticOp { static var op: Op { .leaf } }
    enum Add: StaticOp { static var op: Op { .add } }
    enum Sub: StaticOp { static var op: Op { .sub } }
    enum Mul: StaticOp { static var op: Op { .mul } }
    enum Div: StaticOp { static var op: Op { .div } }
    enum Neg: StaticOp { static var op: Op { .neg } }
    enum PowConst: StaticOp { static var op: Op { .powConst } }
    enum Pow: StaticOp { static var op: Op { .pow } }
    enum Exp: StaticOp { static var op: Op { .exp } }
    enum Log: StaticOp { static var op: Op { .log } }
    enum Tanh: StaticOp { static var op: Op { .tanh } }
    enum Relu: StaticOp { static var op: Op { .relu } }
    enum Sigmoid: StaticOp { static var op: Op { .sigmoid } }

    /// Runs `kernel` for `op`: the one place that turns an op value into its type.
    @inline(__always)
    static func run<K: OpKernel>(_ op: Op, _ kernel: K) {
        switch op {
        case .leaf: kernel.run(Leaf.self)
        case .add: kernel.run(Add.self)
        case .sub: kernel.run(Sub.self)
        case .mul: kernel.run(Mul.self)
        case .div: kernel.run(Div.self)
        case .neg: kernel.run(Neg.self)
        case .powConst: kernel.run(PowConst.self)
        case .pow: kernel.run(Pow.self)
        case .exp: kernel.run(Exp.self)
        case .log: kernel.run(Log.self)
        case .tanh: kernel.run(Tanh.self)
        case .relu: kernel.run(Relu.self)
        case .sigmoid: kernel.run(Sigmoid.self)
        }
    }
}

/// The loops: each op's rule from ``Rules`` over a block, eight rows per step.
enum Kernels {
    struct Forward<X: RowSource, Y: RowSource>: OpKernel {
        let target: BlockRows, x: X, y: Y, c: Double, vectors: Int

        func run<O: StaticOp>(_: O.Type) {
            for k in 0..<vectors { target.store(k, Rules.forward(O.op, x.load(k), y.load(k), c)) }
        }
    }

    /// Adds `d out/d input * grad` into the inputs' gradient blocks (`toA`, `toB`, nil where not wanted), or
    /// stores `0 + ...` where this is the input's first contribution, exactly as the single-row engine adds into
    /// a gradient that starts at 0. Both inputs in one pass, so the operands and `grad` are loaded once.
    struct Backward<X: RowSource, Y: RowSource, Out: RowSource>: OpKernel {
        let grad: BlockRows, x: X, y: Y, out: Out, c: Double
        let toA: BlockRows?, firstA: Bool, toB: BlockRows?, firstB: Bool
        let vectors: Int

        func run<O: StaticOp>(_: O.Type) {
            // One input at a time, first before second: when both are the same node (x * x), its second
            // contribution adds to the first, as in the single-row engine.
            if let toA {
                if firstA {
                    for k in 0..<vectors {
                        toA.store(k, BatchVector(0) + Rules.derivatives(O.op, x.load(k), y.load(k), out.load(k), c).dx * grad.load(k))
                    }
                } else {
                    for k in 0..<vectors {
                        toA.store(k, toA.load(k) + Rules.derivatives(O.op, x.load(k), y.load(k), out.load(k), c).dx * grad.load(k))
                    }
                }
            }
            if let toB {
                if firstB {
                    for k in 0..<vectors {
                        toB.store(k, BatchVector(0) + Rules.derivatives(O.op, x.load(k), y.load(k), out.load(k), c).dy * grad.load(k))
                    }
                } else {
                    for k in 0..<vectors {
                        toB.store(k, toB.load(k) + Rules.derivatives(O.op, x.load(k), y.load(k), out.load(k), c).dy * grad.load(k))
                    }
                }
            }
        }
    }
}

/// Asks for 2 MiB pages over a large answer before it is first written: on a 1,000,000-row neuron batch
/// (48 MB) the 4 KiB pages' first-touch faults took more time than the evaluation. Linux only, where
/// transparent huge pages are commonly enabled on request (`madvise`); elsewhere, or if refused, nothing changes.
func adviseHugePages(_ base: UnsafeMutableRawPointer, byteCount: Int) {
    #if os(Linux)
    let huge = 2 << 20
    guard byteCount >= 2 * huge else { return }
    let start = (Int(bitPattern: base) + huge - 1) & ~(huge - 1)
    let end = (Int(bitPattern: base) + byteCount) & ~(huge - 1)
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
    #endif
}

/// Calls `body` with the base address of each array (all kept alive for the call), without copying them.
func withColumnPointers<R>(_ arrays: [[Double]], _ body: ([UnsafeMutableRawPointer]) -> R) -> R {
    func nest(_ i: Int, _ acc: inout [UnsafeMutableRawPointer]) -> R {
        if i == arrays.count { return body(acc) }
        return arrays[i].withUnsafeBufferPointer { buffer in
            // Read only: the kernels never write a leaf's rows (leaves are not forward targets).
            acc.append(UnsafeMutableRawPointer(mutating: buffer.baseAddress!))
            return nest(i + 1, &acc)
        }
    }
    var acc: [UnsafeMutableRawPointer] = []
    return nest(0, &acc)
}
