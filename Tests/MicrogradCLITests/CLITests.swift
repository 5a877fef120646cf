import Foundation
import HTTPTesting
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

/// Runs `micrograd` to completion; a watchdog kills it after `seconds` (a hang guard: then the status is SIGKILL's).
func run(_ arguments: [String], stdin: String = "", environment: [String: String] = [:], seconds: Int = 60) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let finished = DispatchSemaphore(value: 0)
    let pid = process.processIdentifier
    DispatchQueue.global().async {
        if finished.wait(timeout: .now() + .seconds(seconds)) == .timedOut { kill(pid, SIGKILL) }
    }
    defer { finished.signal() }
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    // stderr is drained on its own thread so neither pipe can fill up and stall the child.
    let errorData = Shared(Data())
    let errorsRead = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        errorData.withLock { $0 = data }
        errorsRead.signal()
    }
    let out = output.fileHandleForReading.readDataToEndOfFile()
    errorsRead.wait()
    let err = errorData.current
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

        // The service's answers to the same requests: the same bytes but the id ("local" here) and the newline.
        let server = try ServeProcess()
        defer { server.stop() }
        let fromService = try post(server.port, "/evaluate", seedGraph)
        #expect(fromService.status == 200)
        #expect(withoutID(fromService) + "\n" == fromFile.stdout)
        let expressionFromService = try post(
            server.port, "/evaluate", #"{"expression": "a*b + c", "values": {"a": 2, "b": -3, "c": 10}}"#)
        #expect(withoutID(expressionFromService) + "\n" == expression.stdout)
        let dot = try post(server.port, "/evaluate?format=dot", seedGraph)
        #expect(dot.text == (try run(["eval", "--format", "dot"], stdin: seedGraph)).stdout)  // DOT ends in a newline
        let jgf = try post(server.port, "/evaluate?format=jgf", seedGraph)
        #expect(withoutID(jgf) + "\n" == (try run(["eval", "--format", "jgf"], stdin: seedGraph)).stdout)
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

    @Test func evaluatesTheLecturesStatementProgram() throws {
        let program = "a = 2.0\nb = -3.0\nc = 10.0\ne = a*b\nd = e + c\nf = -2.0\nL = d * f"
        let result = try run(["eval", "--expression", program])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix(#"{"id":"local","output":"L","value":-8.0,"nodes":[{"id":"a","label":"a","data":2.0,"grad":6.0}"#))

        let twice = try run(["eval", "--expression", "a = 1\nb = a*2\na = 3"])
        #expect(twice.status == 1)
        #expect(twice.stderr == "micrograd: invalid expression: 'a' is already assigned on line 1; a name is assigned once. (at /expression, line 3, column 1)\n")
    }

    @Test func badUsageIsStatus64() throws {
        #expect(try run(["eval", "--format", "xml"], stdin: seedGraph).status == 64)
        #expect(try run(["eval", "--set", "x=1"], stdin: seedGraph).status == 64)
        #expect(try run(["eval", "--expression", "x", "--set", "x=abc"]).status == 64)
    }
}

@Suite("micrograd serve and healthcheck")
struct ServeCommandTests {
    @Test func servesAnswersTheHealthcheckAndStopsCleanlyOnSIGTERM() throws {
        let server = try ServeProcess()
        defer { server.stop() }
        let port = server.port
        let healthy = try run(["healthcheck", "--url", "http://127.0.0.1:\(port)/healthz"])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        let notThere = try run(["healthcheck", "--url", "http://127.0.0.1:\(port)/nope"])
        #expect(notThere.status == 1 && notThere.stdout.contains("404"))
        let byEnvironment = try run(["healthcheck"], environment: ["PORT": String(port)])
        #expect(byEnvironment.status == 0)

        // Idle: SIGTERM stops it at once (the bound is a hang guard, not a timing claim).
        kill(server.pid, SIGTERM)
        #expect(try server.waitForExit(seconds: 60) == 0)
        #expect(server.log.contains { $0.hasSuffix("stopped") })
    }

    /// The real stop of `micrograd serve`, in the documented order (docs/container.md, "Stopping"): on SIGTERM
    /// /readyz answers 503 and answers close their connections while it still accepts (the drain delay; a second
    /// signal ends it); then it stops accepting, lets the request in flight finish and exits 0. The request in flight
    /// is an SVG rendering held by a fake `dot` until the test releases it.
    @Test(.timeLimit(.minutes(3))) func sigtermDrainsThenStopsAcceptingThenFinishesInFlightAndExitsZero() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("micrograd-gated-dot-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let entered = directory.appendingPathComponent("entered").path, release = directory.appendingPathComponent("release").path
        let script = directory.appendingPathComponent("dot").path
        // Polls for the release file for at most 120 s (a hang guard if the test dies).
        try """
            #!/bin/sh
            : > '\(entered)'
            i=0
            while [ ! -e '\(release)' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
            cat > /dev/null
            printf '<svg>released</svg>'

            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)

        let server = try ServeProcess(arguments: [
            "--host", "127.0.0.1", "--port", "0", "--dot-path", script, "--svg-timeout", "120",
            "--drain-delay", "120", "--grace-period", "120",
        ])
        defer { server.stop() }
        let port = server.port

        let inFlight = Shared<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let outcome: String
            do {
                let response = try post(port, "/evaluate?format=svg", seedGraph, timeoutSeconds: 120)
                outcome = "\(response.status) \(response.text) \(response.header("Connection") ?? "-")"
            } catch {
                outcome = "error \(error)"
            }
            inFlight.withLock { $0 = outcome }
            done.signal()
        }.start()
        #expect(eventually { FileManager.default.fileExists(atPath: entered) }, "the renderer never started")
        // Opened now, so the worker held by the rendering cannot have taken it: another one serves it.
        let keptAlive = try TestConnection(port: port, timeoutSeconds: 60)
        #expect(try keptAlive.request("GET", "/readyz").status == 200)

        kill(server.pid, SIGTERM)
        _ = try server.waitForLine(containing: "draining")
        // Draining and still accepting: not ready (on new and kept-alive connections), alive, and every answer
        // closes its connection.
        let notReady = try TestConnection(port: port).request("GET", "/readyz")
        #expect(notReady.status == 503 && notReady.header("Connection") == "close")
        #expect(notReady.text.contains("/problems/unavailable"))
        let alive = try TestConnection(port: port).request("GET", "/healthz")
        #expect(alive.status == 200 && alive.header("Connection") == "close")
        let keptAliveAnswer = try keptAlive.request("GET", "/readyz")
        #expect(keptAliveAnswer.status == 503 && keptAliveAnswer.header("Connection") == "close")
        #expect(keptAlive.waitForClose())

        // A second signal ends the delay: it stops accepting, the request in flight still runs.
        kill(server.pid, SIGTERM)
        _ = try server.waitForLine(containing: "stopping")
        #expect(eventually { isRefused(port) }, "still accepting after the drain delay")
        #expect(done.wait(timeout: .now()) == .timedOut, "the request in flight must not be cut off")
        #expect(FileManager.default.createFile(atPath: release, contents: nil))

        #expect(done.wait(timeout: .now() + 120) == .success)
        #expect(inFlight.current == "200 <svg>released</svg> close")
        #expect(try server.waitForExit(seconds: 120) == 0)
        #expect(server.log.contains { $0.hasSuffix("stopped") })
    }

    /// Every option has an environment variable; the command line wins over it. Read back from the startup line,
    /// which logs every effective setting.
    @Test func everyOptionReadsItsEnvironmentVariableAndTheCommandLineWins() throws {
        let environment = [
            "HOST": "127.0.0.1", "PORT": "0", "THREADS": "3", "MAX_BODY_BYTES": "12345", "MAX_NODES": "777",
            "MAX_EXPRESSION_BYTES": "4321", "CONNECTION_LIMIT": "55", "PER_IP_CONNECTION_LIMIT": "7", "IDLE_TIMEOUT": "9",
            "HEADER_MEMORY": "32768", "STORE_GRAPHS": "11", "STORE_BYTES": "99999", "PRIVATE": "1", "SVG_MAX_NODES": "66",
            "SVG_TIMEOUT": "4", "DOT_PATH": "/nonexistent/dot", "GRACE_PERIOD": "3", "DRAIN_DELAY": "2", "LOG_LEVEL": "debug",
        ]
        let fromEnvironment = try ServeProcess(arguments: [], environment: environment)
        defer { fromEnvironment.stop() }
        let expected = [
            "host": "127.0.0.1", "threads": "3", "max_body_bytes": "12345", "max_nodes": "777", "max_expression_bytes": "4321",
            "connection_limit": "55", "per_ip_connection_limit": "7", "idle_timeout": "9", "header_memory": "32768",
            "store_graphs": "11", "store_bytes": "99999", "private": "true", "svg_max_nodes": "66", "svg_timeout": "4",
            "dot_path": "/nonexistent/dot", "grace_period": "3", "drain_delay": "2", "log_level": "debug",
        ]
        for (key, value) in expected {
            #expect(setting(key, in: fromEnvironment.startupLine) == value, "\(key) from the environment")
        }
        // And they act: PRIVATE=1 serves no "most recent graph", MAX_NODES refuses a bigger graph.
        #expect(try post(fromEnvironment.port, "/evaluate", seedGraph).status == 200)
        let recent = try TestConnection(port: fromEnvironment.port).request("GET", "/graph.dot")
        #expect(recent.status == 404 && recent.text.contains("private"))
        fromEnvironment.stop()

        let fromFlags = try ServeProcess(arguments: [
            "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--max-body-bytes", "2000", "--max-nodes", "10",
            "--max-expression-bytes", "20", "--connection-limit", "30", "--per-ip-connection-limit", "4",
            "--idle-timeout", "5", "--header-memory", "16384", "--store-graphs", "6", "--store-bytes", "7000",
            "--svg-max-nodes", "8", "--svg-timeout", "9", "--dot-path", "/bin/false", "--grace-period", "1",
            "--drain-delay", "0", "--log-level", "info",
        ], environment: environment.merging(["HOST": "0.0.0.0", "PORT": "1"]) { $1 })
        defer { fromFlags.stop() }
        let flagged = [
            "host": "127.0.0.1", "threads": "1", "max_body_bytes": "2000", "max_nodes": "10", "max_expression_bytes": "20",
            "connection_limit": "30", "per_ip_connection_limit": "4", "idle_timeout": "5", "header_memory": "16384",
            "store_graphs": "6", "store_bytes": "7000", "private": "true", "svg_max_nodes": "8", "svg_timeout": "9",
            "dot_path": "/bin/false", "grace_period": "1", "drain_delay": "0", "log_level": "info",
        ]
        for (key, value) in flagged {
            #expect(setting(key, in: fromFlags.startupLine) == value, "\(key) from the command line")
        }
        #expect(setting("port", in: fromFlags.startupLine) != "1")
        let elevenNodes = #"{"nodes": ["# + (0..<11).map { #"{"id": "n\#($0)", "value": 1}"# }.joined(separator: ",") + "]}"
        let tooBig = try post(fromFlags.port, "/evaluate", elevenNodes)
        #expect(tooBig.status == 422 && tooBig.text.contains("10"), "\(tooBig.text)")
        fromFlags.stop()

        // Without PRIVATE nor --private: the most recent graph is served.
        let open = try ServeProcess()
        defer { open.stop() }
        #expect(setting("private", in: open.startupLine) == "false")
    }

    @Test func invalidSettingsAreUsageErrors() throws {
        // Bounded by run's watchdog: a regression that starts serving cannot hang the suite (and fails the status).
        let badEnvironment = try run(["serve", "--host", "127.0.0.1"], environment: ["PORT": "eighty"], seconds: 30)
        #expect(badEnvironment.status == 64)
        #expect(badEnvironment.stderr.contains("PORT='eighty'"))
        let badLevel = try run(["serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "loud"], seconds: 30)
        #expect(badLevel.status == 64)
        let negativeDelay = try run(["serve", "--host", "127.0.0.1", "--port", "0", "--drain-delay", "-1"], seconds: 30)
        #expect(negativeDelay.status == 64)
        let help = try run(["serve", "--help"])
        #expect(help.status == 0 && help.stdout.contains("MAX_NODES]") && help.stdout.contains("DRAIN_DELAY]"))
    }
}

/// `micrograd serve` as a child process. Its output is read line by line, each wait bounded (a hang guard); the
/// process is killed and reaped by `stop()` whatever happened.
final class ServeProcess {
    let process = Process()
    private let output = Pipe()
    private var buffer: [UInt8] = []
    private(set) var log: [String] = []
    private(set) var port = 0
    private(set) var startupLine = ""

    var pid: Int32 { process.processIdentifier }

    init(arguments: [String] = ["--host", "127.0.0.1", "--port", "0"], environment: [String: String] = [:]) throws {
        process.executableURL = executable
        process.arguments = ["serve"] + arguments
        // The test's own environment minus the service's variables, so only what a test sets applies.
        let inherited = ProcessInfo.processInfo.environment.filter { !serveVariables.contains($0.key) }
        process.environment = inherited.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        do {
            startupLine = try waitForLine(containing: "micrograd listening")
            guard let port = setting("port", in: startupLine).flatMap(Int.init) else {
                throw CLIFailure("no port in \(startupLine)")
            }
            self.port = port
        } catch {
            stop()
            throw error
        }
    }

    /// The next line containing `text` (earlier lines are kept in `log`); throws after `seconds` or at EOF.
    func waitForLine(containing text: String, seconds: Int = 60) throws -> String {
        let deadline = DispatchTime.now() + .seconds(seconds)
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            while let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeFirst(newline + 1)
                log.append(line)
                if line.contains(text) { return line }
            }
            let left = Int(deadline.uptimeNanoseconds / 1_000_000) - Int(DispatchTime.now().uptimeNanoseconds / 1_000_000)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard left > 0, poll(&poller, 1, Int32(left)) == 1 else {
                throw CLIFailure("no line with '\(text)' within \(seconds) s; log: \(log.suffix(5))")
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { throw CLIFailure("output ended before '\(text)'; log: \(log.suffix(5))") }
            buffer += chunk[..<count]
        }
    }

    /// The exit status, reading the rest of the output into `log`; throws if still running after `seconds`.
    func waitForExit(seconds: Int) throws -> Int32 {
        _ = try? waitForLine(containing: "\u{0}", seconds: seconds)  // reads to EOF (or the bound)
        for _ in 0..<(seconds * 100) where process.isRunning { usleep(10_000) }
        guard !process.isRunning else { throw CLIFailure("still running after \(seconds) s") }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

/// The environment variables `serve` reads.
let serveVariables: Set<String> = [
    "HOST", "PORT", "THREADS", "MAX_BODY_BYTES", "MAX_NODES", "MAX_EXPRESSION_BYTES", "CONNECTION_LIMIT",
    "PER_IP_CONNECTION_LIMIT", "IDLE_TIMEOUT", "HEADER_MEMORY", "STORE_GRAPHS", "STORE_BYTES", "PRIVATE", "SVG_MAX_NODES",
    "SVG_TIMEOUT", "DOT_PATH", "GRACE_PERIOD", "DRAIN_DELAY", "LOG_LEVEL", "STORE", "STORE_TTL", "STORE_TIMEOUT",
    "STORE_CONNECT_TIMEOUT",
]

/// `key=value` from a log line's metadata.
func setting(_ key: String, in line: String) -> String? {
    line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
}

func post(_ port: Int, _ target: String, _ body: String, timeoutSeconds: Int = 60) throws -> RawResponse {
    try TestConnection(port: port, timeoutSeconds: timeoutSeconds).request(
        "POST", target, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
}

/// A service answer with its graph id replaced by the CLI's ("local").
func withoutID(_ response: RawResponse) -> String {
    response.text.replacingOccurrences(of: response.header("X-Graph-Id") ?? "no id", with: "local")
}

struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
