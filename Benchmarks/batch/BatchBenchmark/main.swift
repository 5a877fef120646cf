// The batched evaluator (CompiledGraph.evaluateBatch) on batch_tape.c's two workloads, built node for node
// the same way (the MLP's parameters from the same xorshift stream), with the same per-row leaf values
// (0.001 * (row + node index)). Prints one line like batch_tape.c: ns per node-row, forward + backward, over
// the graph's node count. Benchmarks/batch/run interleaves it with the C program and prints the ratios.
//
//   BatchBenchmark neuron ROWS [CHUNK [BLOCK]]   all 5 leaves vary; gradients of all 5 per row
//   BatchBenchmark neuron-unsaturated ROWS [CHUNK [BLOCK]]   the same with leaves in [-0.5, 0.5) (0.001 * ((row +
//       node) % 1000) - 0.5), so tanh's argument stays within (-1, 1); with the values above it passes 22 (where
//       tanh is ±1 and both libm and the engine stop early) from row ~3,100 on: 99.7% of 1,000,000 rows
//   BatchBenchmark mlp ROWS [CHUNK]      x0, x1 vary (337 parameters shared); gradients of x0, x1 per row
//   BatchBenchmark mlp-all ROWS [CHUNK]  the same, with the gradients of all 339 leaves per row (as the C computes)
// CHUNK > 0 evaluates the rows as consecutive calls of CHUNK rows (columns that stay in cache, as the C's
// generated values do); 0 (default) is one call over all rows, columns in and out of memory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Micrograd

func fixed(_ x: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    return "\((x * scale).rounded() / scale)"
}

/// Wall clock, or with BATCH_CLOCK=thread the thread's CPU time (steadier on a shared machine; `run` builds the
/// C with the same clock for that column).
let threadClock = getenv("BATCH_CLOCK").map { String(cString: $0) } == "thread"

func now() -> Double {
    var t = timespec()
    clock_gettime(threadClock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + 1e-9 * Double(t.tv_nsec)
}

var state: UInt64 = 88_172_645_463_325_252
@MainActor func rnd() -> Double {  // batch_tape.c's xorshift, so the MLP's parameters are the same numbers
    state ^= state << 13; state ^= state >> 7; state ^= state << 17
    return Double(state >> 11) * (1.0 / 9_007_199_254_740_992.0) * 2 - 1
}

let arguments = CommandLine.arguments
let workload = arguments.count > 1 ? arguments[1] : "neuron"
let rows = arguments.count > 2 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000
let chunk = arguments.count > 3 ? Int(arguments[3]) ?? 0 : 0
let blockRows = arguments.count > 4 ? Int(arguments[4]) : nil  // default: the engine's choice
guard rows >= 1, chunk >= 0, ["neuron", "neuron-unsaturated", "mlp", "mlp-all"].contains(workload) else {
    print("usage: BatchBenchmark neuron|neuron-unsaturated|mlp|mlp-all ROWS [CHUNK [BLOCK]]")
    exit(2)
}

let tape = Tape()
var varying: [Int32] = []
var allLeaves: [Int32] = []
let output: Int32
let unsaturated = workload == "neuron-unsaturated"
if workload.hasPrefix("neuron") {
    let x1 = tape.leaf(0), w1 = tape.leaf(0), x2 = tape.leaf(0), w2 = tape.leaf(0), b = tape.leaf(0)
    let s = tape.apply(.add, tape.apply(.mul, x1, w1), tape.apply(.mul, x2, w2))
    output = tape.apply(.tanh, tape.apply(.add, s, b))
    varying = [x1, w1, x2, w2, b]
    allLeaves = varying
} else {
    varying = [tape.leaf(0), tape.leaf(0)]
    allLeaves = varying
    var previous = varying
    for (layer, size) in [16, 16, 1].enumerated() {
        var current: [Int32] = []
        for _ in 0..<size {
            var acc = tape.leaf(rnd())  // bias
            allLeaves.append(acc)
            for p in previous {
                let w = tape.leaf(rnd())
                allLeaves.append(w)
                acc = tape.apply(.add, acc, tape.apply(.mul, w, p))
            }
            current.append(layer < 2 ? tape.apply(.tanh, acc) : acc)
        }
        previous = current
    }
    output = previous[0]
}
let graph = CompiledGraph(tape: tape, output: output)
let wanted = workload == "mlp-all" ? allLeaves : varying

@MainActor func columns(_ first: Int, _ count: Int) -> [Int32: BatchColumn] {
    var inputs: [Int32: BatchColumn] = [:]
    for leaf in varying {
        var column = [Double](repeating: 0, count: count)
        for r in 0..<count {
            column[r] = unsaturated ? 0.001 * Double((first + r + Int(leaf)) % 1000) - 0.5 : 0.001 * Double(first + r + Int(leaf))
        }
        inputs[leaf] = .rows(column)
    }
    return inputs
}

/// Seconds for all rows, and a checksum (first row's value + a gradient) so the work cannot be skipped.
@MainActor func run() -> (seconds: Double, check: Double) {
    if chunk == 0 {
        let inputs = columns(0, rows)
        let t0 = now()
        let result = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: wanted, blockRows: blockRows)
        let t1 = now()
        return (t1 - t0, result.value(0) + result.gradient(0, 0))
    }
    var seconds = 0.0, check = 0.0, done = 0
    while done < rows {
        let n = min(chunk, rows - done)
        let inputs = columns(done, n)
        let t0 = now()
        let result = graph.evaluateBatch(rows: n, inputs: inputs, gradients: wanted, blockRows: blockRows)
        seconds += now() - t0
        check += result.value(0) + result.gradient(0, 0)
        done += n
    }
    return (seconds, check)
}

// Median of 5 runs after a warm-up (first-touch page faults), like batch_py.py's medians.
_ = run()
var times: [Double] = []
var check = 0.0
for _ in 0..<5 {
    let (s, c) = run()
    times.append(s)
    check = c
}
let seconds = times.sorted()[2]
let nodeRows = Double(graph.count) * Double(rows)
print("swift \(workload): \(graph.count) nodes x \(rows) rows\(chunk > 0 ? " in calls of \(chunk)" : ""): total "
      + "\(fixed(1e9 * seconds / nodeRows, 3)) ns/node-row (\(fixed(1e3 * seconds, 1)) ms) [check \(check)]")
withExtendedLifetime(tape) {}
