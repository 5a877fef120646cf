import Foundation
import HTTPServer
import HTTPTesting
import MicrogradGraph
import MicrogradService
import Testing

@Suite("GET /graph.*")
struct GraphRoutesTests {
    @Test func nothingToServeBeforeTheFirstEvaluation() throws {
        try withServiceInProcess { service, _ in
            let response = try send(service, "GET", "/graph.dot")
            #expect(response.status == 404)
            #expect(response.header("Content-Type") == "application/problem+json")
        }
    }

    @Test func theMostRecentGraphAndAnyStoredOneByID() throws {
        try withService { port, _ in
            let first = try postJSON(port, "/evaluate", seedRequest)
            let firstID = try #require(first.header("X-Graph-Id"))
            _ = try postJSON(port, "/evaluate", neuronRequest)

            let recent = try send(port, "GET", "/graph.dot")
            #expect(recent.status == 200)
            #expect(recent.header("Content-Type") == "text/vnd.graphviz; charset=utf-8")
            #expect(recent.text.contains("x1") && !recent.text.contains("\"p\""))

            let byID = try send(port, "GET", "/graph.json?id=\(firstID)")
            #expect(byID.status == 200)
            #expect(byID.header("Content-Type") == "application/vnd.jgf+json")
            let graph = try #require(try jsonObject(byID)["graph"] as? [String: Any])
            #expect((graph["nodes"] as? [String: Any])?.keys.sorted() == ["a", "b", "c", "d", "e", "p"])

            let svg = try send(port, "GET", "/graph.svg?id=\(firstID)")
            #expect(svg.status == 200 && svg.text.contains("<svg"))

            let head = try TestConnection(port: port).request("HEAD", "/graph.dot")
            #expect(head.status == 200 && head.body.isEmpty)

            #expect(try send(port, "GET", "/graph.dot?id=0123456789abcdef0123456789abcdef").status == 404)
        }
    }

    @Test func aPrivateServerServesByIDOnly() throws {
        var configuration = ServiceConfiguration()
        configuration.isPrivate = true
        try withServiceInProcess(configuration) { service, _ in
            let id = try #require(try postJSON(service, "/evaluate", seedRequest).header("X-Graph-Id"))
            let withoutID = try send(service, "GET", "/graph.dot")
            #expect(withoutID.status == 404)
            #expect((try jsonObject(withoutID)["detail"] as? String)?.contains("private") == true)
            #expect(try send(service, "GET", "/graph.dot?id=\(id)").status == 200)
        }
    }
}

@Suite("Routing, operations and errors")
struct OperationsTests {
    @Test func unknownPathsAndWrongMethodsAreProblems() throws {
        try withServiceInProcess { service, _ in
            let missing = try send(service, "GET", "/nope")
            #expect(missing.status == 404)
            #expect(try jsonObject(missing)["type"] as? String == "/problems/not-found")

            let wrongMethod = try send(service, "GET", "/evaluate")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("Allow") == "POST")
            #expect(try jsonObject(wrongMethod)["type"] as? String == "/problems/method-not-allowed")

            let deleteGraph = try send(service, "DELETE", "/graph.dot")
            #expect(deleteGraph.status == 405)
            #expect(deleteGraph.header("Allow") == "GET, HEAD")
        }
    }

    @Test func healthReadinessAndDraining() throws {
        try withService { port, _ throws in
            #expect(try send(port, "GET", "/healthz").status == 200)
            #expect(try send(port, "GET", "/readyz").status == 200)
        }
        // `serve` wires readiness to the HTTP server's drain state: the one that adds `Connection: close`.
        let running = try GraphService.serve(configuration: loopback, logger: silentLogger)
        #expect(running.service.respond(to: HTTPRequest(method: "GET", path: "/readyz")).status == 200)
        running.shutdown(gracePeriod: .seconds(1))
        #expect(running.service.respond(to: HTTPRequest(method: "GET", path: "/readyz")).status == 503)

        let draining = GraphService(isDraining: { true })
        #expect(draining.respond(to: HTTPRequest(method: "GET", path: "/readyz")).status == 503)
        #expect(draining.respond(to: HTTPRequest(method: "GET", path: "/healthz")).status == 200)
    }

    @Test func metricsCountRequestsByRouteAndStatus() throws {
        try withServiceInProcess { service, _ in
            _ = try postJSON(service, "/evaluate", seedRequest)
            _ = try send(service, "GET", "/nope")
            let metrics = try send(service, "GET", "/metrics")
            #expect(metrics.status == 200)
            let text = metrics.text
            #expect(text.contains(#"http_requests_total{method="POST",route="/evaluate",status="200"} 1"#))
            #expect(text.contains(#"route="unmatched",status="404""#))
            #expect(text.contains("http_request_duration_seconds_bucket"))
            #expect(text.contains("graph_nodes_bucket"))
        }
    }

    @Test func theSpecIsServedByteForByteAsCommitted() throws {
        let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"))
        try withServiceInProcess { service, _ in
            let served = try send(service, "GET", "/openapi.yaml")
            #expect(served.status == 200)
            #expect(Data(served.body) == committed, "run scripts/embed-openapi after editing openapi.yaml")
        }
    }
}

@Suite("The page")
struct PageRoutesTests {
    @Test func servesThePageItsScriptAndStyleUnderAStrictPolicy() throws {
        try withService { port, _ in
            for (path, type, marker) in [
                ("/", "text/html", "<html"), ("/app.js", "javascript", "evaluate"), ("/app.css", "text/css", "{"),
            ] {
                let response = try send(port, "GET", path)
                #expect(response.status == 200, "\(path)")
                #expect(response.header("Content-Type")?.contains(type) == true, "\(path)")
                #expect(response.header("Content-Security-Policy")?.hasPrefix("default-src 'self'") == true)
                #expect(response.text.contains(marker), "\(path)")
                let etag = try #require(response.header("ETag"))
                let again = try send(port, "GET", path, headers: [("If-None-Match", etag)])
                #expect(again.status == 304 && again.body.isEmpty)
            }
        }
    }

    /// A store that cannot be reached answers 503, never a wrong 404; an evaluation is still answered.
    @Test func anUnavailableStoreIsA503NotA404() throws {
        let service = GraphService(store: UnreachableStore())
        let evaluated = service.respond(to: HTTPRequest(
            method: "POST", path: "/evaluate", headers: [("Content-Type", "application/json")], body: Array(seedRequest.utf8)))
        #expect(evaluated.status == 200)
        for query in [[], [(name: "id", value: "abc")]] {
            let response = service.respond(to: HTTPRequest(method: "GET", path: "/graph.dot", query: query))
            #expect(response.status == 503)
            #expect(String(decoding: response.body, as: UTF8.self).contains("/problems/store-unavailable"))
        }
    }
}

/// A store that is always down: what a shared store answers while it cannot be reached.
struct UnreachableStore: GraphStore {
    func newEvaluationID() -> String { "unreachable" }
    func putEvaluation(_ graph: EvaluatedGraph, id: String) -> StoreWrite { .notStored(.unavailable(reason: "down")) }
    func evaluation(id: String) -> StoreRead<StoredEvaluation> { .unavailable(reason: "down") }
    func mostRecentEvaluation() -> StoreRead<StoredEvaluation> { .unavailable(reason: "down") }
    func deleteEvaluation(id: String) -> StoreDeletion { .unavailable(reason: "down") }
    func register(_ spec: GraphSpec, key: String) -> StoreRegistration { .notStored(.unavailable(reason: "down")) }
    func registered(key: String) -> StoreRead<GraphSpec> { .unavailable(reason: "down") }
    func deleteRegistered(key: String) -> StoreDeletion { .unavailable(reason: "down") }
}
