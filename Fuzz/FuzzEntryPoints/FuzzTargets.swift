import Micrograd
import MicrogradGraph

/// The code paths the fuzzers drive, shared by the libFuzzer builds, the corpus replayers and the tests.
///
/// Each entry point takes arbitrary bytes and must return normally: a crash, a trap, a hang or a leak is the finding.
/// Beyond "does not crash", each checks the contract a caller relies on and traps (`fatalError`) when it is broken,
/// so libFuzzer records the input.
public enum FuzzTargets {
    /// Smaller than the service's defaults so one input cannot spend seconds legitimately (libFuzzer's -timeout),
    /// but large enough for every limit check to be reachable from a few kilobytes of input.
    public static let limits = GraphLimits(maxNodes: 20_000, maxExpressionBytes: 64 << 10, maxIDLength: 256)

    /// Variables the expression fuzzer binds, so that well-formed expressions get past "unbound variable".
    public static let boundVariables: [(name: String, value: Double)] = [
        ("x", 0.5), ("y", -2), ("z", 3), ("a", 2), ("b", -3), ("c", 10), ("w", 0),
        ("x1", 2), ("w1", -3), ("x2", 0), ("w2", 1), ("t", .infinity), ("n", .nan),
    ]

    /// POST /evaluate's decoder on raw body bytes; a graph that decodes is also evaluated and encoded.
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) {
        let body = Array(bytes)
        let spec: GraphSpec
        do throws(Problem) {
            spec = try GraphRequestDecoder.decode(body, limits: limits)
        } catch {
            check(error, allowed: [.malformedJSON, .invalidRequest, .invalidGraph, .invalidExpression, .tooLarge])
            return
        }
        checkSpec(spec)
    }

    /// The expression compiler on the bytes as UTF-8 source (invalid sequences become U+FFFD, as String does).
    public static func compile(_ bytes: UnsafeBufferPointer<UInt8>) {
        let source = String(decoding: bytes, as: UTF8.self)
        let spec: GraphSpec
        do throws(Problem) {
            spec = try ExpressionCompiler.compile(source, values: boundVariables, limits: limits)
        } catch {
            check(error, allowed: [.tooLarge, .invalidGraph, .invalidExpression])
            if let column = error.column, column < 1 || column > source.utf8.count + 1 {
                fatalError("column \(column) outside a \(source.utf8.count)-byte expression")
            }
            let lines = source.utf8.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            if let line = error.line, line < 1 || line > lines || lines == 1 {
                fatalError("line \(line) in a \(lines)-line expression")
            }
            if let unbound = error.unbound, unbound.isEmpty || Set(unbound).count != unbound.count {
                fatalError("unbound names listed empty or twice: \(unbound)")
            }
            return
        }
        checkSpec(spec)
        // A name is one node: the JSON answer and the DOT drawing rely on unique ids.
        if Set(spec.ids).count != spec.count { fatalError("duplicate node ids in \(spec.ids)") }
    }

    /// Decode, then evaluate and encode in every representation, twice: the bytes must not change (determinism).
    public static func evaluate(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let spec = try? GraphRequestDecoder.decode(Array(bytes), limits: limits) else { return }
        checkSpec(spec)
        let first = encodeAll(GraphEvaluator.evaluate(spec, on: tape))
        let second = encodeAll(GraphEvaluator.evaluate(spec, on: tape))
        if first != second { fatalError("the same graph encoded to different bytes") }
        if tape.capacity > 1 << 16 { tape.removeAll(keepingCapacity: false) }
    }

    /// `POST /graphs/{gid}/evaluate`'s body decoder (and the expression-batch reading of `POST /evaluate`); a call
    /// that decodes and names the neuron's leaves is run as a batch, and every row must equal the single-row engine.
    public static func call(_ bytes: UnsafeBufferPointer<UInt8>) {
        let body = Array(bytes)
        do throws(Problem) {
            _ = try GraphCallDecoder.expressionBatch(body)
        } catch {
            check(error, allowed: [.malformedJSON, .invalidRequest, .invalidValues])
        }
        let call: GraphCall
        do throws(Problem) {
            call = try GraphCallDecoder.decode(body)
        } catch {
            check(error, allowed: [.malformedJSON, .invalidRequest, .invalidValues])
            return
        }
        // The neuron tanh(x1*w1 + x2*w2 + b), leaves 0, 1, 3, 4, 7 as the expression compiler numbers them.
        let leaves: [String: Int32] = ["x1": 0, "w1": 1, "x2": 3, "w2": 4, "b": 7]
        var rows = 0
        var inputs: [Int32: BatchColumn] = [:]
        for (name, value) in call.values {
            guard let leaf = leaves[name] else { return }
            switch value {
            case .number(let v): inputs[leaf] = .shared(v)
            case .rows(let r):
                if r.isEmpty { fatalError("an empty array decoded") }
                if rows != 0 && r.count != rows { return }
                rows = r.count
                inputs[leaf] = .rows(r)
            }
        }
        guard rows > 0, rows <= 4096 else { return }
        let gradients = (call.gradients ?? call.values.map(\.name)).compactMap { leaves[$0] }
        let result = neuron.evaluateBatch(rows: rows, inputs: inputs, gradients: gradients, reduction: call.reduction)
        guard call.reduction == .none else { return }
        for r in 0..<rows {
            var values: [Int32: Double] = [:]
            for (leaf, column) in inputs {
                switch column {
                case .shared(let v): values[leaf] = v
                case .rows(let c): values[leaf] = c[r]
                }
            }
            neuron.evaluate(on: tape, values: values)
            func same(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
            if !same(result.value(r), tape.data(neuron.output)) { fatalError("batch row \(r) differs from the single row") }
            for (j, leaf) in gradients.enumerated() where !same(result.gradient(j, r), tape.grad(leaf)) {
                fatalError("batch row \(r) gradient \(leaf) differs from the single row")
            }
        }
    }

    private static let neuron: CompiledGraph = {
        let spec = try! ExpressionCompiler.compile("tanh(x1*w1 + x2*w2 + b)", values: boundVariables, limits: limits)
        return try! CompiledGraph(ops: spec.ops, lhs: spec.lhs, rhs: spec.rhs, values: spec.values, output: spec.output)
    }()

    /// One tape for the process (libFuzzer runs inputs on one thread), reused like the service's per-thread tape.
    nonisolated(unsafe) private static let tape = Tape()

    private static func encodeAll(_ graph: EvaluatedGraph) -> [[UInt8]] {
        if graph.data.count != graph.spec.count || graph.grad.count != graph.spec.count {
            fatalError("evaluated arrays do not match the node count")
        }
        let json = GraphEncoder.json(graph, graphID: "fuzz")
        if json.first != UInt8(ascii: "{") || json.last != UInt8(ascii: "}") { fatalError("JSON output is not an object") }
        if json.contains(where: { $0 < 0x20 }) { fatalError("raw control byte in JSON output") }
        return [json, GraphEncoder.dot(graph), GraphEncoder.jgf(graph, graphID: "fuzz")]
    }

    /// What every successfully decoded graph must satisfy for the evaluator's unchecked indexing to be safe.
    private static func checkSpec(_ spec: GraphSpec) {
        let n = spec.count
        if n > limits.maxNodes { fatalError("\(n) nodes passed a cap of \(limits.maxNodes)") }
        guard spec.ids.count == n, spec.labels.count == n, spec.lhs.count == n, spec.rhs.count == n,
              spec.values.count == n, spec.isConstant.count == n
        else { fatalError("GraphSpec arrays differ in length") }
        if n > 0 && !(0..<Int32(n)).contains(spec.output) { fatalError("output \(spec.output) outside 0..<\(n)") }
        for i in 0..<n where spec.ops[i] != .leaf {
            // Inputs come before users: the order is topological, which also rules out cycles.
            if !(0..<Int32(i)).contains(spec.lhs[i]) { fatalError("node \(i): first input \(spec.lhs[i]) not earlier") }
            if spec.rhs[i] >= Int32(i) || spec.rhs[i] < -1 { fatalError("node \(i): second input \(spec.rhs[i]) not earlier") }
        }
    }

    private static func check(_ problem: Problem, allowed: Set<Problem.Kind>) {
        if !allowed.contains(problem.kind) {
            fatalError("\(problem.kind) for bad input; expected one of \(allowed.map(\.rawValue).sorted())")
        }
        if problem.detail.isEmpty { fatalError("incomplete problem \(problem)") }
        // The problem must serialise (the service sends these bytes, with its own type, title and status).
        let encoded = GraphEncoder.problem(
            type: problem.kind.rawValue, title: problem.kind.title, status: 400, detail: problem.detail,
            pointer: problem.pointer, column: problem.column, line: problem.line, unbound: problem.unbound)
        if encoded.first != UInt8(ascii: "{") || encoded.contains(where: { $0 < 0x20 }) {
            fatalError("problem encoded badly: \(String(decoding: encoded, as: UTF8.self))")
        }
    }
}
