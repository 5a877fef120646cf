import Foundation
import HTTPTesting
import MicrogradService
import Testing

// Documented behaviour of the real service over HTTP: concurrent evaluation, stored graphs under the SVG and store
// limits, and a renderer that takes too long.

/// A graph of `count` nodes: two leaves, then ops cycling through tanh, mul, add, exp of earlier nodes.
func mixedGraphRequest(count: Int) -> String {
    var nodes = [#"{"id":"x0","value":0.5}"#, #"{"id":"x1","value":-0.25}"#]
    for i in 2..<max(2, count) {
        switch i % 4 {
        case 0: nodes.append(#"{"id":"x\#(i)","op":"tanh","inputs":["x\#(i - 1)"]}"#)
        case 1: nodes.append(#"{"id":"x\#(i)","op":"mul","inputs":["x\#(i - 1)","x\#(i - 2)"]}"#)
        case 2: nodes.append(#"{"id":"x\#(i)","op":"add","inputs":["x\#(i - 1)","x0"]}"#)
        default: nodes.append(#"{"id":"x\#(i)","op":"tanh","inputs":["x\#(i - 2)"]}"#)
        }
    }
    return #"{"nodes":["# + nodes.joined(separator: ",") + "]}"
}

/// The body with the response's graph id replaced, so answers to the same request compare byte for byte.
func withoutGraphID(_ response: RawResponse) -> String {
    response.text.replacingOccurrences(of: response.header("X-Graph-Id") ?? "no id", with: "ID")
}

@Suite("Service behaviour over HTTP")
struct ServiceBehaviourTests {
    /// Per-thread tapes and one shared store under concurrent load: every answer equals the sequential one, and every
    /// id serves the graph it was minted for.
    @Test(.timeLimit(.minutes(5))) func concurrentEvaluationsMatchTheSequentialAnswers() throws {
        let requests: [(target: String, body: String)] = [
            ("/evaluate", seedRequest), ("/evaluate", neuronRequest),
            ("/evaluate", mixedGraphRequest(count: 10)), ("/evaluate", mixedGraphRequest(count: 200)),
            ("/evaluate", mixedGraphRequest(count: 5000)), ("/evaluate?format=dot", mixedGraphRequest(count: 8000)),
            ("/evaluate?format=jgf", mixedGraphRequest(count: 3000)),
            ("/evaluate?format=jgf", seedRequest), ("/evaluate", #"{"expression":"exp(x)*y - x/y","values":{"x":1.5,"y":-2}}"#),
        ]
        try withService { port, _ in
            let sequential = try requests.map { request in
                let response = try postJSON(port, request.target, request.body)
                #expect(response.status == 200, "\(response.text.prefix(200))")
                return withoutGraphID(response)
            }
            let clients = 8, rounds = 16
            let mismatches = Shared<[String]>([])
            let stored = Shared<[(id: String, request: Int)]>([])
            onThreads(clients) { client in
                do {
                    for round in 0..<rounds {
                        let index = (client * 3 + round) % requests.count  // each client a different mix and order
                        // A new connection each time: the server spreads connections over its workers as they accept.
                        let response = try TestConnection(port: port, timeoutSeconds: 120).request(
                            "POST", requests[index].target, headers: [("Content-Type", "application/json")],
                            body: Array(requests[index].body.utf8))
                        if withoutGraphID(response) != sequential[index] {
                            mismatches.withLock { $0.append("client \(client) request \(index): \(response.text.prefix(120))") }
                        }
                        if let id = response.header("X-Graph-Id") { stored.withLock { $0.append((id, index)) } }
                    }
                } catch {
                    mismatches.withLock { $0.append("client \(client): \(error)") }
                }
            }
            let wrong = mismatches.current
            #expect(wrong.count == 0, "\(wrong.prefix(3))")
            let ids = stored.current
            #expect(ids.count == clients * rounds)
            #expect(Set(ids.map(\.id)).count == ids.count, "ids are unique")
            // The store kept each graph under its own id (the default store holds all of them).
            for (id, index) in ids where requests[index].target == "/evaluate" {
                let again = try send(port, "GET", "/graph.dot?id=\(id)")
                let direct = try postJSON(port, "/evaluate?format=dot", requests[index].body)
                #expect(again.status == 200 && again.body == direct.body, "id \(id) for request \(index)")
            }
        }
    }

    @Test func aStoredGraphOverTheSVGNodeCapIsRefusedAsSVGOnly() throws {
        var configuration = ServiceConfiguration()
        configuration.svg.maxNodes = 5
        try withService(configuration) { port, _ in
            let small = try #require(try postJSON(port, "/evaluate", #"{"nodes":[{"id":"a","value":1}]}"#).header("X-Graph-Id"))
            #expect(try send(port, "GET", "/graph.svg?id=\(small)").status == 200)
            let id = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))  // 6 nodes
            let svg = try send(port, "GET", "/graph.svg?id=\(id)")
            try expectProblem(svg, status: 422, type: "/problems/render-limit")
            #expect(try jsonObject(svg)["detail"] as? String
                == "SVG is drawn for graphs of up to 5 nodes; this one has 6. Ask for DOT or JSON instead (format=dot, /graph.dot).")
            #expect(try send(port, "GET", "/graph.dot?id=\(id)").status == 200)
        }
    }

    /// A `dot` that never finishes: the request answers 503 at the SVG timeout, the renderer and its children are
    /// gone, and the service goes on serving.
    @Test func aRendererOverItsTimeoutIs503() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("micrograd-stuck-dot-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sleeper = directory.appendingPathComponent("sleeper").path
        try FileManager.default.createSymbolicLink(atPath: sleeper, withDestinationPath: "/bin/sleep")
        let script = directory.appendingPathComponent("dot").path
        try "#!/bin/sh\n'\(sleeper)' 60\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        var configuration = ServiceConfiguration()
        configuration.svg.dotPath = script
        configuration.svg.timeout = .seconds(1)
        try withService(configuration) { port, _ in
            let id = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            var response = try send(port, "GET", "/graph.svg?id=\(id)")
            // Another test's child may briefly hold the new script open for writing (ETXTBSY): try again.
            for _ in 0..<50 where response.status == 503 && response.text.contains("busy") {
                usleep(20_000)
                response = try send(port, "GET", "/graph.svg?id=\(id)")
            }
            try expectProblem(response, status: 503, type: "/problems/renderer-unavailable")
            #expect(try jsonObject(response)["detail"] as? String == "Graphviz took longer than 1.0 seconds to lay out the graph.")
            try expectStillServing(port)
        }
        var left = processes(mentioning: directory.path)
        for _ in 0..<1000 where !left.isEmpty {
            usleep(10_000)
            left = processes(mentioning: directory.path)
        }
        for pid in left { kill(pid, SIGKILL) }
        #expect(left.isEmpty, "renderer processes outlived the request: \(left)")
    }

    @Test func theStoreForgetsTheLeastRecentlyUsedGraphOverItsCount() throws {
        var configuration = ServiceConfiguration()
        configuration.store.maxGraphs = 2
        try withService(configuration) { port, _ in
            let a = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            let b = try #require(try postJSON(port, "/evaluate", neuronRequest).header("X-Graph-Id"))
            #expect(try send(port, "GET", "/graph.dot?id=\(a)").status == 200)  // a is now the more recently used
            let c = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            try expectProblem(try send(port, "GET", "/graph.dot?id=\(b)"), status: 404, type: "/problems/not-found")
            #expect(try send(port, "GET", "/graph.dot?id=\(a)").status == 200)
            #expect(try send(port, "GET", "/graph.dot?id=\(c)").status == 200)
        }
    }

    @Test func theStoreForgetsTheOldestGraphOverItsBytes() throws {
        // seedRequest's 6 nodes are accounted as 658 bytes: one fits in 1000, two do not.
        var configuration = ServiceConfiguration()
        configuration.store.maxBytes = 1000
        try withService(configuration) { port, _ in
            let a = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            #expect(try send(port, "GET", "/graph.json?id=\(a)").status == 200)
            let b = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            try expectProblem(try send(port, "GET", "/graph.json?id=\(a)"), status: 404, type: "/problems/not-found")
            #expect(try send(port, "GET", "/graph.json?id=\(b)").status == 200)
        }
    }
}

