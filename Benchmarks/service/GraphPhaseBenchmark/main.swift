// Where POST /evaluate's time goes, in process (no sockets): decode, evaluate (forward + backward), encode, and the
// whole route through GraphService.respond. Not a test: numbers depend on the machine and its load.
//
//   GraphPhaseBenchmark LARGE.json SMALL.json [ROUNDS=7]     phases of both requests, medians of ROUNDS
//   GraphPhaseBenchmark --loop FILE COUNT                     the whole route COUNT times (a driver for perf/callgrind)
import HTTPServer
import Micrograd
import MicrogradGraph
import MicrogradService

#if canImport(Glibc)
import Glibc
#endif

func readFile(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// This thread's CPU seconds: on a machine shared with builds, wall time measures the neighbours too.
func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Runs `body` `count` times per round; returns the median over rounds of the CPU seconds per call.
func measure(rounds: Int, count: Int, _ body: () -> Void) -> Double {
    var samples: [Double] = []
    for _ in 0..<rounds {
        let start = threadCPUSeconds()
        for _ in 0..<count { body() }
        samples.append((threadCPUSeconds() - start) / Double(count))
    }
    return median(samples)
}

@inline(never)
func blackHole<T>(_ x: T) {
    withExtendedLifetime(x) {}
}

let service = GraphService()

func evaluateRequest(_ body: [UInt8]) -> HTTPRequest {
    HTTPRequest(method: "POST", path: "/evaluate", headers: [("Content-Type", "application/json")], body: body)
}

func phases(_ name: String, _ body: [UInt8], rounds: Int, count: Int, unit: Double, unitName: String) {
    let limits = GraphLimits()
    let spec: GraphSpec
    do { spec = try GraphRequestDecoder.decode(body, limits: limits) } catch { fatalError("\(name): \(error)") }
    let graph = GraphEvaluator.evaluate(spec, on: Tape.current)
    let out = GraphEncoder.json(graph, graphID: "00000000000000000000000000000000")
    let tDecode = measure(rounds: rounds, count: count) { blackHole(try? GraphRequestDecoder.decode(body, limits: limits)) }
    let tEvaluate = measure(rounds: rounds, count: count) { blackHole(GraphEvaluator.evaluate(spec, on: Tape.current)) }
    let tEncode = measure(rounds: rounds, count: count) {
        blackHole(GraphEncoder.json(graph, graphID: "00000000000000000000000000000000"))
    }
    let request = evaluateRequest(body)
    let tRoute = measure(rounds: rounds, count: count) {
        let response = service.respond(to: request)
        precondition(response.status == 200, "\(name): status \(response.status)")
        blackHole(response)
    }
    let mb = 1e6
    print("\(name): \(spec.count) nodes, \(body.count) bytes in, \(out.count) bytes out (CPU time, medians of \(rounds) rounds x \(count))")
    func line(_ phase: String, _ t: Double, _ bytes: Int?) {
        var s = "  " + phase.padding(12) + (t * unit).fixed(2).leftPad(10) + " " + unitName
        s += (t * 1e9 / Double(spec.count)).fixed(1).leftPad(10) + " ns/node"
        if let bytes { s += (Double(bytes) / t / mb).fixed(0).leftPad(8) + " MB/s" }
        print(s)
    }
    line("decode", tDecode, body.count)
    line("evaluate", tEvaluate, nil)
    line("encode json", tEncode, out.count)
    line("sum", tDecode + tEvaluate + tEncode, nil)
    line("route", tRoute, nil)
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

extension Double {
    func fixed(_ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (self * scale).rounded() / scale
        var s = String(r)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        }
        return s
    }
}

let arguments = CommandLine.arguments
if arguments.count >= 4 && arguments[1] == "--loop" {
    let request = evaluateRequest(readFile(arguments[2]))
    let count = Int(arguments[3]) ?? 1
    for _ in 0..<count {
        let response = service.respond(to: request)
        precondition(response.status == 200, "status \(response.status)")
    }
} else if arguments.count >= 3 {
    let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 7 : 7
    phases("large", readFile(arguments[1]), rounds: rounds, count: 1, unit: 1e3, unitName: "ms")
    phases("small", readFile(arguments[2]), rounds: rounds, count: 2000, unit: 1e6, unitName: "us")
} else {
    print("usage: GraphPhaseBenchmark LARGE.json SMALL.json [ROUNDS] | --loop FILE COUNT")
    exit(2)
}
