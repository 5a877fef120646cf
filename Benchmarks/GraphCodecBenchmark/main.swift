// Release-mode measurement of the graph codec on issue 5's large request: a chain x = x*w_i + b_i,
// 4 nodes per step, random weights printed shortest round-trip (17 digits, like Python's repr).
// Run: swift run -c release GraphCodecBenchmark [nodes] [repeats]
import Foundation
import Micrograd
import MicrogradGraph

func chainRequest(nodes: Int) -> [UInt8] {
    var rng = SplitMix64(seed: 42)
    var s = "{\"nodes\":[{\"id\":\"x0\",\"value\":\(rng.uniform(-1, 1))}"
    var x = "x0"
    for i in 1...max(1, nodes / 4) {
        s += ",{\"id\":\"w\(i)\",\"value\":\(rng.uniform(-1, 1))},{\"id\":\"b\(i)\",\"value\":\(rng.uniform(-1, 1))}"
        s += ",{\"id\":\"m\(i)\",\"op\":\"mul\",\"inputs\":[\"\(x)\",\"w\(i)\"]}"
        s += ",{\"id\":\"x\(i)\",\"op\":\"add\",\"inputs\":[\"m\(i)\",\"b\(i)\"]}"
        x = "x\(i)"
    }
    s += "]}"
    return Array(s.utf8)
}

/// CPU time of this thread: the machine is shared, and wall time then mostly measures waiting for a core.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func seconds(_ body: () -> Void) -> Double {
    let t0 = cpuNow()
    body()
    return cpuNow() - t0
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

let args = CommandLine.arguments
let nodes = args.count > 1 ? Int(args[1]) ?? 100_000 : 100_000
let repeats = args.count > 2 ? Int(args[2]) ?? 7 : 7
let body = chainRequest(nodes: nodes)
if args.count > 3 && args[3] == "decode-only" {  // for profiling the decoder alone
    for _ in 0..<repeats { _ = try! GraphRequestDecoder.decode(body, limits: GraphLimits()) }
    exit(0)
}
if args.count > 3 && args[3] == "small-decode-only" {  // for callgrind: instruction counts are stable on a busy machine
    let seed = Array(#"{"nodes": [{"id": "a", "value": 2.0, "label": "a"}, {"id": "b", "value": -3.0}, {"id": "c", "value": 10.0}, {"id": "e", "op": "mul", "inputs": ["a", "b"]}, {"id": "d", "op": "add", "inputs": ["e", "c"]}], "output": "d"}"#.utf8)
    for _ in 0..<repeats { _ = try! GraphRequestDecoder.decode(seed, limits: GraphLimits()) }
    exit(0)
}
if args.count > 3 && args[3] == "encode-only" {
    let g = GraphEvaluator.evaluate(try! GraphRequestDecoder.decode(body, limits: GraphLimits()), on: Tape())
    for _ in 0..<repeats { _ = GraphEncoder.json(g, graphID: "benchmark") }
    exit(0)
}
if args.count > 3 && args[3] == "evaluate-only" {
    let spec = try! GraphRequestDecoder.decode(body, limits: GraphLimits())
    let tape = Tape(capacity: spec.count)
    for _ in 0..<repeats { _ = GraphEvaluator.evaluate(spec, on: tape) }
    exit(0)
}
let tape = Tape(capacity: nodes + 8)
var spec = GraphSpec()
var graph: EvaluatedGraph?
var out: [UInt8] = []
var decodeTimes: [Double] = [], evalTimes: [Double] = [], encodeTimes: [Double] = [], engineTimes: [Double] = []
var engineOutput = 0.0
for _ in 0..<repeats {
    // The engine alone on the same chain (leaf/apply/backward, no spec, no copying out): the floor for evaluate.
    engineTimes.append(seconds {
        tape.removeAll(keepingCapacity: true)
        var x = tape.leaf(spec.count > 0 ? spec.values[0] : 0.5)
        var i = 1
        while i + 3 < max(spec.count, 1) {
            let w = tape.leaf(spec.values[i]), b = tape.leaf(spec.values[i + 1])
            x = tape.apply(.add, tape.apply(.mul, x, w), b)
            i += 4
        }
        tape.backward(from: x)
        engineOutput = tape.data(x)
    })
    decodeTimes.append(seconds { spec = try! GraphRequestDecoder.decode(body, limits: GraphLimits()) })
    evalTimes.append(seconds { graph = GraphEvaluator.evaluate(spec, on: tape) })
    encodeTimes.append(seconds { out = GraphEncoder.json(graph!, graphID: "benchmark") })
}
let inMB = Double(body.count) / 1e6, outMB = Double(out.count) / 1e6
let d = median(decodeTimes), e = median(evalTimes), w = median(encodeTimes)
print("graph codec, \(spec.count) nodes, \(String(format: "%.2f", inMB)) MB in, \(String(format: "%.2f", outMB)) MB out, median of \(repeats), thread CPU time")
print(String(format: "decode   %7.2f ms  %7.1f MB/s  %6.1f ns/node", d * 1e3, inMB / d, d * 1e9 / Double(spec.count)))
print(String(format: "evaluate %7.2f ms  %7.1f MB/s  %6.1f ns/node (forward + backward + copy out)", e * 1e3, inMB / e, e * 1e9 / Double(spec.count)))
let engine = median(Array(engineTimes.dropFirst()))  // the first run has no decoded spec yet
print(String(format: "engine   %7.2f ms                 %6.1f ns/node (Tape alone, same chain; output %@)", engine * 1e3, engine * 1e9 / Double(spec.count), "\(engineOutput)"))
print(String(format: "encode   %7.2f ms  %7.1f MB/s  %6.1f ns/node", w * 1e3, outMB / w, w * 1e9 / Double(spec.count)))
print(String(format: "total    %7.2f ms  (output value %@)", (d + e + w) * 1e3, "\(graph!.outputValue)"))

// The small request: the README's seed graph (a*b + c and a pow), whole codec path.
let seed = Array("""
    {"nodes": [{"id": "a", "value": 2.0, "label": "a"}, {"id": "b", "value": -3.0}, {"id": "c", "value": 10.0},
     {"id": "e", "op": "mul", "inputs": ["a", "b"]}, {"id": "d", "op": "add", "inputs": ["e", "c"]}], "output": "d"}
    """.utf8)
let smallRounds = 20_000
var smallTimes: [Double] = []
var smallBytes = 0
for _ in 0..<max(repeats, 3) {
    smallTimes.append(seconds {
        for _ in 0..<smallRounds {
            let g = GraphEvaluator.evaluate(try! GraphRequestDecoder.decode(seed, limits: GraphLimits()), on: tape)
            smallBytes = GraphEncoder.json(g, graphID: "0123456789abcdef").count
        }
    })
}
let smallSpec = try! GraphRequestDecoder.decode(seed, limits: GraphLimits())
let smallGraph = GraphEvaluator.evaluate(smallSpec, on: tape)
let smallDecode = median((0..<max(repeats, 3)).map { _ in seconds { for _ in 0..<smallRounds { _ = try! GraphRequestDecoder.decode(seed, limits: GraphLimits()) } } })
let smallEvaluate = median((0..<max(repeats, 3)).map { _ in seconds { for _ in 0..<smallRounds { _ = GraphEvaluator.evaluate(smallSpec, on: tape) } } })
let smallEncode = median((0..<max(repeats, 3)).map { _ in seconds { for _ in 0..<smallRounds { _ = GraphEncoder.json(smallGraph, graphID: "0123456789abcdef") } } })
print(String(format: "small    %7.2f us per request (%d bytes in, %d out): decode %.2f, evaluate %.2f, encode %.2f us",
             median(smallTimes) * 1e6 / Double(smallRounds), seed.count, smallBytes,
             smallDecode * 1e6 / Double(smallRounds), smallEvaluate * 1e6 / Double(smallRounds), smallEncode * 1e6 / Double(smallRounds)))

// Peak RSS of this whole process (request text, spec, tape, results and response all alive at once): an upper
// bound for one request of this size (issue 5's third target is <= 1 KiB per node).
var usage = rusage()
getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
print(String(format: "peak RSS %7.1f MB  (%.0f bytes per node, whole process)", Double(usage.ru_maxrss) / 1024,
             Double(usage.ru_maxrss) * 1024 / Double(max(spec.count, 1))))
