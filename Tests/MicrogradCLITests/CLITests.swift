import Foundation
import Testing

/// The `micrograd` executable, run as a user runs it: arguments, stdin, environment in; stdout, stderr, status out.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The built `micrograd`, next to this test bundle in the build folder.
let executable: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("micrograd").path),
          directory.pathComponents.count > 1 {
        directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("micrograd")
}()

func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
               stderr: String(decoding: err, as: UTF8.self))
}

let seedGraph = """
    {"nodes": [{"id": "a", "value": 2.0}, {"id": "b", "value": -3.0}, {"id": "c", "value": 10.0},
               {"id": "e", "op": "mul", "inputs": ["a", "b"]}, {"id": "d", "op": "add", "inputs": ["e", "c"]}]}
    """

@Suite("micrograd eval")
struct EvalCommandTests {
    @Test func evaluatesARequestFromStdin() throws {
        let result = try run(["eval"], stdin: seedGraph)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix(#"{"id":"local","output":"d","value":4.0,"nodes":[{"id":"a","data":2.0,"grad":-3.0}"#))
        #expect(result.stdout.hasSuffix("\n"))
        #expect(result.stderr.isEmpty)
    }

    @Test func evaluatesAFileAndAnExpressionTheSameWayAsTheService() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("micrograd-cli-\(getpid()).json")
        try Data(seedGraph.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try run(["eval", file.path])
        let fromStdin = try run(["eval", "-"], stdin: seedGraph)
        #expect(fromFile.status == 0 && fromFile.stdout == fromStdin.stdout)

        let expression = try run(["eval", "--expression", "a*b + c", "--set", "a=2", "--set", "b=-3", "--values", #"{"c": 10}"#])
        #expect(expression.status == 0, "\(expression.stderr)")
        #expect(expression.stdout.contains(#""value":4.0"#))
        #expect(expression.stdout.contains(#"{"id":"a","label":"a","data":2.0,"grad":-3.0}"#))
    }

    @Test func evaluatesBatches() throws {
        let batch = try run(["eval", "--expression", "x*w", "--values", #"{"x": [1, 2, 3], "w": 0.5}"#])
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.stdout == ##"{"rows":3,"output":"#1","value":[0.5,1.0,1.5],"gradients":{"x":[0.5,0.5,0.5],"w":[1.0,2.0,3.0]}}"## + "\n")
        let summed = try run(["eval"], stdin: #"{"expression": "x*x", "values": {"x": [1, 2]}, "reduce": "sum"}"#)
        #expect(summed.stdout == ##"{"rows":2,"output":"#1","value":[1.0,4.0],"gradients":{"x":6.0}}"## + "\n")
        let mismatch = try run(["eval", "--expression", "x*w", "--values", #"{"x": [1, 2], "w": [1]}"#])
        #expect(mismatch.status == 1)
        #expect(mismatch.stderr.contains("/values/w"))
        #expect(try run(["eval", "--format", "dot", "--expression", "x", "--values", #"{"x": [1]}"#]).status != 0)
    }

    @Test func printsDOTAndJGF() throws {
        let dot = try run(["eval", "--format", "dot"], stdin: seedGraph)
        #expect(dot.status == 0 && dot.stdout.hasPrefix("digraph") && dot.stdout.contains("rankdir=LR"))
        let jgf = try run(["eval", "-f", "jgf"], stdin: seedGraph)
        #expect(jgf.status == 0 && jgf.stdout.hasPrefix(#"{"graph":"#))
    }

    @Test func badInputIsAMessageOnStderrAndStatusOne() throws {
        let result = try run(["eval"], stdin: #"{"nodes": [{"id": "a", "op": "mull", "inputs": [1, 2]}]}"#)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("micrograd: invalid graph: "))
        #expect(result.stderr.contains("/nodes/0/op"))

        let expression = try run(["eval", "--expression", "x +", "--set", "x=1"])
        #expect(expression.status == 1 && expression.stderr.contains("column 4"))

        let missing = try run(["eval", "/nonexistent/graph.json"])
        #expect(missing.status == 1 && missing.stderr.contains("cannot open /nonexistent/graph.json"))
    }

    @Test func badUsageIsStatus64() throws {
        #expect(try run(["eval", "--format", "xml"], stdin: seedGraph).status == 64)
        #expect(try run(["eval", "--set", "x=1"], stdin: seedGraph).status == 64)
        #expect(try run(["eval", "--expression", "x", "--set", "x=abc"]).status == 64)
    }
}

@Suite("micrograd serve and healthcheck")
struct ServeCommandTests {
    /// Starts `micrograd serve` on a free port; returns the process and the port it logged.
    func startServer(environment: [String: String] = [:]) throws -> (Process, Int, Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // availableData blocks: a watchdog ends a server that never logs its port, which ends the loop with EOF.
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { if process.isRunning { process.terminate() } }
        var log = ""
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
            if let range = log.range(of: #"port=(\d+)"#, options: .regularExpression),
               let port = Int(log[range].dropFirst("port=".count)) {
                return (process, port, output)
            }
        }
        process.terminate()
        throw CLIFailure("the server did not log its port: \(log)")
    }

    @Test func servesAnswersTheHealthcheckAndStopsCleanlyOnSIGTERM() throws {
        let (server, port, _) = try startServer(environment: ["PRIVATE": "1"])
        defer { if server.isRunning { server.terminate() } }
        let healthy = try run(["healthcheck", "--url", "http://127.0.0.1:\(port)/healthz"])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        let notThere = try run(["healthcheck", "--url", "http://127.0.0.1:\(port)/nope"])
        #expect(notThere.status == 1 && notThere.stdout.contains("404"))
        let byEnvironment = try run(["healthcheck"], environment: ["PORT": String(port)])
        #expect(byEnvironment.status == 0)

        let started = Date()
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(try run(["healthcheck", "--url", "http://127.0.0.1:\(port)/healthz", "--timeout", "1"]).status == 1)
    }

    @Test func invalidSettingsAreUsageErrors() throws {
        let badEnvironment = try run(["serve"], environment: ["PORT": "eighty"])
        #expect(badEnvironment.status == 64)
        #expect(badEnvironment.stderr.contains("PORT='eighty'"))
        let badLevel = try run(["serve", "--port", "0", "--log-level", "loud"])
        #expect(badLevel.status == 64)
        let help = try run(["serve", "--help"])
        #expect(help.status == 0 && help.stdout.contains("MAX_NODES]"))
    }
}

struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
