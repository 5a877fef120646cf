#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
import Micrograd

/// The batched evaluator against the single-row engine: every row must be the same bits.
@Suite struct BatchTests {
    /// Values that reach every branch of the rules: signed zeros, tiny and huge, tanh's switch points,
    /// exp's overflow and underflow, log of negatives, and the non-finite ones.
    static let edges: [Double] = [
        0, -0.0, 1, -1, 0.5, -2.5, 3, 1e-300, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1e308, -1e308, 709.8, -745.2, 22, 21.99, -22.01,
        0.625, 0.6249999999999999, -0.625, 1e-8, 36.5, .nan, .infinity, -.infinity,
    ]

    /// Whether two results are the same bits (any NaN equals any NaN: JSON writes them all as "NaN").
    static func same(_ a: Double, _ b: Double) -> Bool {
        a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN)
    }

    /// Row r of `result` against the single-row engine with row r's values.
    static func expectRowsMatchSingle(
        _ graph: CompiledGraph, _ inputs: [Int32: BatchColumn], _ gradients: [Int32], _ result: BatchResult,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        var mismatches = 0
        for r in 0..<result.rows {
            var values: [Int32: Double] = [:]
            for (leaf, column) in inputs {
                switch column {
                case .shared(let v): values[leaf] = v
                case .rows(let rows): values[leaf] = rows[r]
                }
            }
            graph.evaluate(on: tape, values: values)
            var ok = same(result.value(r), tape.data(graph.output))
            for (j, leaf) in gradients.enumerated() where !same(result.gradient(j, r), tape.grad(leaf)) { ok = false }
            if !ok {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("row \(r) \(values): batch \(result.value(r)) \(gradients.indices.map { result.gradient($0, r) }), single \(tape.data(graph.output)) \(gradients.map { tape.grad($0) })",
                                 sourceLocation: sourceLocation)
                }
            }
        }
        #expect(mismatches == 0, sourceLocation: sourceLocation)
    }

    @Test(arguments: Op.allCases.filter { $0 != .leaf })
    func everyOpMatchesTheSingleRowEngineOnEdgeValues(op: Op) {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = tape.leaf(0.5), y = tape.leaf(2)
        let out = op.arity == 2 ? tape.apply(op, x, y) : tape.apply(op, x, constant: op == .powConst ? -1.5 : 0)
        let graph = CompiledGraph(tape: tape, output: out)
        // Every pair of edge values: 625 rows, not a multiple of the block.
        let xs = Self.edges.flatMap { a in Self.edges.map { _ in a } }
        let ys = Self.edges.flatMap { _ in Self.edges }
        let inputs: [Int32: BatchColumn] = [x: .rows(xs), y: .rows(ys)]
        for block in [8, 64, 256] {
            let result = graph.evaluateBatch(rows: xs.count, inputs: inputs, gradients: [x, y], blockRows: block)
            Self.expectRowsMatchSingle(graph, inputs, [x, y], result)
        }
        // One side shared, the other varying (the kernels that read a single value for every row).
        for shared in [-2.0, 0, 3] {
            let oneSided: [Int32: BatchColumn] = [x: .rows(Self.edges), y: .shared(shared)]
            Self.expectRowsMatchSingle(graph, oneSided, [x, y],
                                       graph.evaluateBatch(rows: Self.edges.count, inputs: oneSided, gradients: [x, y]))
            let otherSide: [Int32: BatchColumn] = [x: .shared(shared), y: .rows(Self.edges)]
            Self.expectRowsMatchSingle(graph, otherSide, [y, x],
                                       graph.evaluateBatch(rows: Self.edges.count, inputs: otherSide, gradients: [y, x]))
        }
    }

    @Test func the_same_node_on_both_sides_and_reused_nodes() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = tape.leaf(1), w = tape.leaf(2)
        let sq = tape.apply(.mul, x, x)                       // both inputs the same node
        let t = tape.apply(.tanh, tape.apply(.add, sq, w))
        let out = tape.apply(.add, tape.apply(.mul, t, t), tape.apply(.mul, t, x))
        let graph = CompiledGraph(tape: tape, output: out)
        let inputs: [Int32: BatchColumn] = [x: .rows(Self.edges), w: .shared(-0.5)]
        let result = graph.evaluateBatch(rows: Self.edges.count, inputs: inputs, gradients: [x, w])
        Self.expectRowsMatchSingle(graph, inputs, [x, w], result)
    }

    /// Sums hand their gradient block to their first input (no copy): chains of them, the same node on both
    /// sides, the output itself a sum of requested leaves, a sum's input used again later.
    @Test func sumsThatShareTheirGradientBlock() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = tape.leaf(1), y = tape.leaf(2), z = tape.leaf(3)
        let twice = tape.apply(.add, x, x)
        let none = tape.apply(.sub, y, y)
        let chain = tape.apply(.add, tape.apply(.sub, tape.apply(.add, twice, none), z), tape.apply(.mul, x, z))
        let reused = tape.apply(.add, chain, tape.apply(.tanh, tape.apply(.add, x, y)))
        let inputs: [Int32: BatchColumn] = [x: .rows(Self.edges), y: .rows(Self.edges.reversed()), z: .shared(-0.0)]
        for out in [twice, none, chain, reused, tape.apply(.add, x, y)] {
            let graph = CompiledGraph(tape: tape, output: out)
            for block in [8, 256] {
                let result = graph.evaluateBatch(rows: Self.edges.count, inputs: inputs, gradients: [x, y, z], blockRows: block)
                Self.expectRowsMatchSingle(graph, inputs, [x, y, z], result)
            }
        }
    }

    /// Sums hand their gradient block to both inputs when the second gets no other contribution: a neuron's
    /// terms and bias, and a block shared that way must not be handed on to a node that gets more contributions
    /// later (here m, also used by q, and the sum that would pass it on to w's shared block).
    @Test func sumsThatHandTheirBlockToBothInputs() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = tape.leaf(1), y = tape.leaf(2), z = tape.leaf(3), w = tape.leaf(4)
        let neuron = tape.apply(.tanh, tape.apply(.add, tape.apply(.add, tape.apply(.mul, x, y), tape.apply(.mul, z, w)), x))
        let m = tape.apply(.mul, x, y)
        let q = tape.apply(.mul, m, z)
        let c = tape.apply(.tanh, x)
        let hazard = tape.apply(.mul, tape.apply(.tanh, tape.apply(.add, tape.apply(.add, m, c), w)), q)
        let reusedTerm = tape.apply(.add, tape.apply(.add, tape.apply(.add, c, m), z), tape.apply(.mul, c, w))
        let inputs: [Int32: BatchColumn] = [x: .rows(Self.edges), y: .rows(Self.edges.reversed()), z: .shared(1.5),
                                            w: .rows(Self.edges.map { $0 / 3 })]
        for out in [neuron, hazard, reusedTerm] {
            let graph = CompiledGraph(tape: tape, output: out)
            for block in [8, 256] {
                let result = graph.evaluateBatch(rows: Self.edges.count, inputs: inputs, gradients: [x, y, z, w], blockRows: block)
                Self.expectRowsMatchSingle(graph, inputs, [x, y, z, w], result)
            }
        }
    }

    /// Random graphs: random ops over random earlier nodes, leaves varying or shared or kept, random gradients.
    @Test func randomGraphsMatchTheSingleRowEngine() {
        var rng = SplitMix64(seed: 13)
        for trial in 0..<40 {
            let tape = Tape()
            defer { withExtendedLifetime(tape) {} }
            var leaves: [Int32] = []
            for _ in 0..<4 { leaves.append(tape.leaf(Double.random(in: -2...2, using: &rng))) }
            let ops = Op.allCases.filter { $0 != .leaf }
            for _ in 0..<Int.random(in: 5...60, using: &rng) {
                let op = ops.randomElement(using: &rng)!
                let a = Int32.random(in: 0..<Int32(tape.count), using: &rng)
                let b = Int32.random(in: 0..<Int32(tape.count), using: &rng)
                if Int.random(in: 0..<8, using: &rng) == 0 { leaves.append(tape.leaf(Double.random(in: -3...3, using: &rng))) }
                _ = op.arity == 2 ? tape.apply(op, a, b) : tape.apply(op, a, constant: Double(Int.random(in: -2...3, using: &rng)) / 2)
            }
            let out = Int32(tape.count - 1)
            let graph = CompiledGraph(tape: tape, output: out)
            let rows = Int.random(in: 1...300, using: &rng)
            var inputs: [Int32: BatchColumn] = [:]
            for leaf in leaves {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: inputs[leaf] = .rows((0..<rows).map { _ in Double.random(in: -3...3, using: &rng) })
                case 1: inputs[leaf] = .shared(Double.random(in: -3...3, using: &rng))
                default: break
                }
            }
            let wanted = leaves.filter { _ in Bool.random(using: &rng) }
            let result = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: wanted,
                                             blockRows: [8, 16, 256][trial % 3])
            Self.expectRowsMatchSingle(graph, inputs, wanted, result)
        }
    }

    @Test func blockBoundariesDoNotChangeAnyBit() {
        let (graph, x1, w1, b) = Self.neuron()
        for rows in [1, 7, 8, 9, 255, 256, 257, 1000] {
            let inputs: [Int32: BatchColumn] = [
                x1: .rows((0..<rows).map { Double($0) * 0.01 - 2 }),
                w1: .rows((0..<rows).map { 1 - Double($0) * 0.003 }),
                b: .shared(0.25),
            ]
            let reference = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: [x1, w1, b], blockRows: 8)
            Self.expectRowsMatchSingle(graph, inputs, [x1, w1, b], reference)
            for block in [16, 64, 256] {
                let result = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: [x1, w1, b], blockRows: block)
                #expect(result.values.map(\.bitPattern) == reference.values.map(\.bitPattern))
                #expect(result.gradients.map { $0.map(\.bitPattern) } == reference.gradients.map { $0.map(\.bitPattern) })
            }
        }
    }

    @Test func reduceSumAddsTheRowsInTheDocumentedOrder() {
        let (graph, x1, w1, b) = Self.neuron()
        for rows in [1, 5, 8, 300, 1001] {
            let inputs: [Int32: BatchColumn] = [
                x1: .rows((0..<rows).map { sin(Double($0)) * 3 }),
                w1: .rows((0..<rows).map { cos(Double($0) * 0.7) }),
            ]
            let perRow = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: [x1, w1, b])
            for block in [8, 64, 256] {
                let summed = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: [x1, w1, b], reduction: .sum,
                                                 blockRows: block)
                #expect(summed.values.map(\.bitPattern) == perRow.values.map(\.bitPattern))
                for j in 0..<3 {
                    var s = [Double](repeating: 0, count: 8)
                    for r in 0..<rows { s[r % 8] = s[r % 8] + perRow.gradient(j, r) }
                    let expected = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
                    #expect(summed.gradients[j] == [expected])
                    let naive = perRow.gradients[j].reduce(0, +)
                    #expect(abs(expected - naive) <= 1e-12 * max(1, abs(naive)))
                }
            }
        }
    }

    @Test func workingMemoryDependsOnTheBlockNotTheRows() {
        let (graph, x1, w1, _) = Self.neuron()
        let small = graph.evaluateBatch(rows: 10, inputs: [x1: .rows(Array(repeating: 1, count: 10))], gradients: [x1, w1])
        let large = graph.evaluateBatch(rows: 100_000, inputs: [x1: .rows(Array(repeating: 1, count: 100_000))],
                                        gradients: [x1, w1])
        // A batch smaller than a block gets a block its size, rounded up to a vector of 8 rows.
        #expect(small.blockRows == 16)
        #expect(small.workingBytes < large.workingBytes)
        // At most a data and a gradient block per node.
        #expect(large.workingBytes <= graph.count * 2 * large.blockRows * 8)
        #expect(large.workingBytes < 100_000 * 8)
        let bigger = graph.evaluateBatch(rows: 1_000_000, inputs: [x1: .rows(Array(repeating: 1, count: 1_000_000))],
                                         gradients: [x1, w1])
        #expect(bigger.workingBytes == large.workingBytes)
    }

    @Test func sharedInputsAndRequestedLeavesOutsideTheOutput() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x = tape.leaf(2), unused = tape.leaf(5)
        let out = tape.apply(.exp, x)
        let graph = CompiledGraph(tape: tape, output: out)
        let result = graph.evaluateBatch(rows: 3, inputs: [x: .shared(1), unused: .rows([1, 2, 3])], gradients: [unused, x])
        #expect(result.values == [M_E, M_E, M_E])
        #expect(result.gradients == [[0, 0, 0], [M_E, M_E, M_E]])
        // The output itself a leaf: its gradient is 1.
        let leafGraph = CompiledGraph(tape: tape, output: x)
        let leafResult = leafGraph.evaluateBatch(rows: 2, inputs: [x: .rows([3, 4])], gradients: [x], reduction: .sum)
        #expect(leafResult.values == [3, 4])
        #expect(leafResult.gradients == [[2]])
        // Full blocks (answers written in place): the output a row leaf, a gradient asked for twice.
        let column = (0..<20).map(Double.init)
        let twice = leafGraph.evaluateBatch(rows: 20, inputs: [x: .rows(column)], gradients: [x, x], blockRows: 8)
        #expect(twice.values == column)
        #expect(twice.gradients == [Array(repeating: 1, count: 20), Array(repeating: 1, count: 20)])
        let (neuron, x1, w1, _) = Self.neuron()
        let inputs: [Int32: BatchColumn] = [x1: .rows(column), w1: .rows(column.map { 1 - $0 / 8 })]
        let repeated = neuron.evaluateBatch(rows: 20, inputs: inputs, gradients: [w1, x1, w1], blockRows: 8)
        Self.expectRowsMatchSingle(neuron, inputs, [w1, x1, w1], repeated)
    }

    /// The engine's tanh (one implementation for both paths) against libm's.
    @Test func tanhIsWithinTwoUlpOfLibm() {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        var rng = SplitMix64(seed: 7)
        var worst = 0.0
        var samples: [Double] = (0..<20_000).map { _ in Double.random(in: -25...25, using: &rng) }
        samples += (0..<20_000).map { _ in Double.random(in: -1...1, using: &rng) }
        samples += (0..<5_000).map { _ in exp(Double.random(in: -700...3, using: &rng)) * (Bool.random(using: &rng) ? 1 : -1) }
        samples += [0.625, -0.625, 0.6249999999999999, 22, 21.999999999999996, .leastNormalMagnitude / 3, .leastNonzeroMagnitude]
        for x in samples {
            let mine = Value(x, on: tape).tanh().data
            let reference = tanh(x)
            let ulps = abs(mine - reference) / reference.ulp
            worst = max(worst, ulps)
            tape.removeAll()
        }
        #expect(worst <= 2, "worst \(worst) ulp")
        #expect(Value(-0.0, on: tape).tanh().data.sign == .minus)
        #expect(Value(.infinity, on: tape).tanh().data == 1)
        #expect(Value(-.infinity, on: tape).tanh().data == -1)
        #expect(Value(.nan, on: tape).tanh().data.isNaN)
        #expect(Value(-1000, on: tape).tanh().data == -1)
    }

    static func neuron() -> (CompiledGraph, Int32, Int32, Int32) {
        let tape = Tape()
        defer { withExtendedLifetime(tape) {} }
        let x1 = tape.leaf(2), w1 = tape.leaf(-3), x2 = tape.leaf(0), w2 = tape.leaf(1), b = tape.leaf(6.881373587019543)
        let s = tape.apply(.add, tape.apply(.mul, x1, w1), tape.apply(.mul, x2, w2))
        let out = tape.apply(.tanh, tape.apply(.add, s, b))
        return (CompiledGraph(tape: tape, output: out), x1, w1, b)
    }
}
