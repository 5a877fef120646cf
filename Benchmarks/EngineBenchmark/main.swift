// The engine against a C flat tape, on the three workloads of issue 2. Run:
//     swift run -c release EngineBenchmark
// Each timed run builds its graph from scratch on both sides (Swift's thread tape is emptied with its
// buffer freed; C starts from a NULL tape), both grow by doubling from 1024 nodes, runs are interleaved in one
// process, and the table shows medians (and, steadier on a loaded machine, the median of the ratios of
// runs paired in time). Forward = leaf creation + graph construction (values are computed as
// nodes are appended); backward = one reverse pass. Before timing, each workload is checked to give the same
// node count, output and a gradient, bit for bit, on both sides.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CTape
import Micrograd

func nowNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// One timed run: nanoseconds for forward and backward, and what it computed (for the equality check).
struct Run {
    var forward: Double
    var backward: Double
    var nodes: Int
    var output: Double
    var probeGrad: Double
}

// MARK: workloads, Swift side (micrograd style: leaves on Tape.current)

let w1Steps = 100_000
let w3Terms = 1_000_000

@inline(never)
func swiftW1() -> (output: Value, probe: Value) {
    let x0 = Value(0.5)
    var x = x0
    for i in 0..<w1Steps {
        let w = Value(1 + 0.01 * sin(Double(i)))
        let b = Value(0.001 * cos(Double(i)))
        x = (x * w + b).tanh()
    }
    return (x, x0)
}

@inline(never)
func swiftW3() -> (output: Value, probe: Value) {
    let a0 = Value(0.0), b0 = Value(1.0)
    var acc = a0 * b0
    for i in 1..<w3Terms {
        let fi = Double(i)
        let a = Value(fi * 1e-6)
        let b = Value(1 - fi * 1e-7)
        acc = acc + a * b
    }
    return (acc, a0)
}

/// 100 fixed points of two interleaved half-moons, labels +1 / -1 (generated once, outside timing).
let (w2Points, w2Labels): ([Double], [Double]) = {
    var rng = SplitMix64(seed: 42)
    var xs: [Double] = [], ys: [Double] = []
    for i in 0..<100 {
        let t = Double.pi * rng.uniform(0, 1)
        let (nx, ny) = (0.1 * rng.uniform(-1, 1), 0.1 * rng.uniform(-1, 1))
        if i % 2 == 0 {
            xs += [cos(t) + nx, sin(t) + ny]
            ys.append(1)
        } else {
            xs += [1 - cos(t) + nx, 0.5 - sin(t) + ny]
            ys.append(-1)
        }
    }
    return (xs, ys)
}()
let w2Seed: UInt64 = 1337

/// micrograd's demo step: scores, SVM max-margin loss, 1e-4 L2 regularisation (model built inside: from scratch).
@inline(never)
func swiftW2() -> (output: Value, probe: Value) {
    let model = MLP(2, [16, 16, 1], seed: w2Seed)
    let n = w2Labels.count
    var lossSum = Value(0)
    for s in 0..<n {
        let score = model([Value(w2Points[2 * s]), Value(w2Points[2 * s + 1])])[0]
        lossSum = lossSum + (1 + (-w2Labels[s]) * score).relu()
    }
    let dataLoss = lossSum * (1.0 / Double(n))
    let parameters = model.parameters()
    var reg = Value(0)
    for p in parameters { reg = reg + p * p }
    return (dataLoss + 1e-4 * reg, parameters[0])
}

// MARK: workloads, Swift on the index API (what the HTTP service calls)

@inline(never)
func tapeW1(_ t: Tape) -> (output: Int32, probe: Int32) {
    let x0 = t.leaf(0.5)
    var x = x0
    for i in 0..<w1Steps {
        let w = t.leaf(1 + 0.01 * sin(Double(i)))
        let b = t.leaf(0.001 * cos(Double(i)))
        x = t.apply(.tanh, t.apply(.add, t.apply(.mul, x, w), b))
    }
    return (x, x0)
}

@inline(never)
func tapeW3(_ t: Tape) -> (output: Int32, probe: Int32) {
    let a0 = t.leaf(0.0), b0 = t.leaf(1.0)
    var acc = t.apply(.mul, a0, b0)
    for i in 1..<w3Terms {
        let fi = Double(i)
        let a = t.leaf(fi * 1e-6)
        let b = t.leaf(1 - fi * 1e-7)
        acc = t.apply(.add, acc, t.apply(.mul, a, b))
    }
    return (acc, a0)
}

// MARK: runners

func runValue(_ build: () -> (output: Value, probe: Value)) -> Run {
    Tape.current.removeAll(keepingCapacity: false)  // from scratch: no buffer carried over
    let t0 = nowNanoseconds()
    let (out, probe) = build()
    let t1 = nowNanoseconds()
    out.backward()
    let t2 = nowNanoseconds()
    let run = Run(forward: Double(t1 - t0), backward: Double(t2 - t1), nodes: Tape.current.count,
                  output: out.data, probeGrad: probe.grad)
    Tape.current.removeAll(keepingCapacity: false)
    return run
}

func runTape(_ build: (Tape) -> (output: Int32, probe: Int32)) -> Run {
    let t0 = nowNanoseconds()
    let tape = Tape()
    let (out, probe) = build(tape)
    let t1 = nowNanoseconds()
    tape.backward(from: out)
    let t2 = nowNanoseconds()
    return Run(forward: Double(t1 - t0), backward: Double(t2 - t1), nodes: tape.count,
               output: tape.data(out), probeGrad: tape.grad(probe))
}

func runC(_ build: (UnsafeMutablePointer<ct_tape>) -> (output: Int32, probe: Int32)) -> Run {
    var tape = ct_tape(nodes: nil, count: 0, capacity: 0)
    let t0 = nowNanoseconds()
    let (out, probe) = build(&tape)
    let t1 = nowNanoseconds()
    ct_backward(&tape, out)
    let t2 = nowNanoseconds()
    let run = Run(forward: Double(t1 - t0), backward: Double(t2 - t1), nodes: Int(tape.count),
                  output: tape.nodes[Int(out)].data, probeGrad: tape.nodes[Int(probe)].grad)
    ct_free(&tape)
    return run
}

func cW2(_ t: UnsafeMutablePointer<ct_tape>) -> (output: Int32, probe: Int32) {
    var first: Int32 = -1
    let out = w2Points.withUnsafeBufferPointer { xs in
        w2Labels.withUnsafeBufferPointer { ys in
            ct_w2(t, xs.baseAddress, ys.baseAddress, Int32(ys.count), w2Seed, &first)
        }
    }
    return (out, first)
}

struct Workload {
    let name: String
    let c: () -> Run
    let swift: [(name: String, run: () -> Run)]
}

let allWorkloads = [
    Workload(name: "W1 tanh chain", c: { runC { (ct_w1($0, Int32(w1Steps)), 0) } },
             swift: [("Value", { runValue(swiftW1) }), ("Tape", { runTape(tapeW1) })]),
    Workload(name: "W2 MLP step", c: { runC(cW2) }, swift: [("Value", { runValue(swiftW2) })]),
    Workload(name: "W3 dot product", c: { runC { (ct_w3($0, Int32(w3Terms)), 0) } },
             swift: [("Value", { runValue(swiftW3) }), ("Tape", { runTape(tapeW3) })]),
]

// Usage: EngineBenchmark [repetitions] [workload prefix, e.g. W2]
let onlyPrefix = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : ""
let workloads = allWorkloads.filter { $0.name.hasPrefix(onlyPrefix) }

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
func fixed(_ x: Double, _ digits: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (x * p).rounded() / p
    var s = "\(r)"
    let decimals = s.split(separator: ".").last.map(\.count) ?? 0
    if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    return s
}

// Correctness first: both sides must compute the same thing.
var failed = false
for w in workloads {
    let c = w.c()
    for s in w.swift {
        let r = s.run()
        let same = r.nodes == c.nodes && r.output.bitPattern == c.output.bitPattern && r.probeGrad.bitPattern == c.probeGrad.bitPattern
        print("check \(w.name) [\(s.name)]: \(r.nodes) nodes, output \(r.output), probe grad \(r.probeGrad)"
              + (same ? "  == C" : "  != C (\(c.nodes) nodes, output \(c.output), probe grad \(c.probeGrad))"))
        if !same { failed = true }
    }
}
if failed {
    print("Swift and C disagree; not timing.")
    exit(1)
}

// Timing: interleaved C / Swift runs, medians; bounded by a run count and a time budget.
let repetitions = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 15
let budget: UInt64 = 90_000_000_000
let start = nowNanoseconds()
var cRuns = Array(repeating: [Run](), count: workloads.count)
var swiftRuns = workloads.map { Array(repeating: [Run](), count: $0.swift.count) }
repetitionLoop: for rep in 0..<repetitions {
    for (wi, w) in workloads.enumerated() {
        if nowNanoseconds() - start > budget { break repetitionLoop }
        // Rotate who goes first, so no engine always inherits the same predecessor's cache and allocator state
        // (glibc, for one, raises its mmap threshold after a large free, so a run's cost depends on the one before).
        let engines = w.swift.count + 1  // index 0 is C
        for k in 0..<engines {
            let e = (k + rep) % engines
            if e == 0 { cRuns[wi].append(w.c()) } else { swiftRuns[wi][e - 1].append(w.swift[e - 1].run()) }
        }
    }
}

/// The machine's load while timing (other processes share these cores; ratios are the robust number).
func loadAverage() -> String {
    guard let file = fopen("/proc/loadavg", "r") else { return "unknown" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 128)
    guard fgets(&line, Int32(line.count), file) != nil else { return "unknown" }
    return String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

print("")
print("load average: \(loadAverage()); timing took \(fixed(Double(nowNanoseconds() - start) / 1e9, 1)) s")
print("ns per node, median of \(cRuns[0].count) runs; the last column is the median of per-repetition ratios")
print("(each C run is paired with the Swift run next to it in time, so both saw the same machine load)")
print("| workload | nodes | engine | forward | backward | fwd ratio | bwd ratio | fwd+bwd ratio | paired fwd+bwd ratio |")
print("|---|--:|---|--:|--:|--:|--:|--:|--:|")
for (wi, w) in workloads.enumerated() {
    let nodes = Double(cRuns[wi][0].nodes)
    let cf = median(cRuns[wi].map(\.forward)) / nodes, cb = median(cRuns[wi].map(\.backward)) / nodes
    print("| \(w.name) | \(Int(nodes)) | C tape | \(fixed(cf)) | \(fixed(cb)) | | | | |")
    for (si, s) in w.swift.enumerated() {
        let runs = swiftRuns[wi][si]
        let f = median(runs.map(\.forward)) / nodes, b = median(runs.map(\.backward)) / nodes
        let paired = median(zip(runs, cRuns[wi]).map { (s, c) in (s.forward + s.backward) / (c.forward + c.backward) })
        print("| \(w.name) | \(Int(nodes)) | Swift \(s.name) | \(fixed(f)) | \(fixed(b)) | \(fixed(f / cf)) | \(fixed(b / cb)) "
              + "| **\(fixed((f + b) / (cf + cb)))** | \(fixed(paired)) |")
    }
}
