import Foundation
import HTTPTesting
import MicrogradService
import Testing

@Suite("GET /graph.*")
struct GraphRoutesTests {
    @Test func nothingToServeBeforeTheFirstEvaluation() throws {
        try withService { port, _ in
            let response = try send(port, "GET", "/graph.dot")
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
        try withService(configuration) { port, _ in
            let id = try #require(try postJSON(port, "/evaluate", seedRequest).header("X-Graph-Id"))
            let withoutID = try send(port, "GET", "/graph.dot")
            #expect(withoutID.status == 404)
            #expect((try jsonObject(withoutID)["detail"] as? String)?.contains("private") == true)
            #expect(try send(port, "GET", "/graph.dot?id=\(id)").status == 200)
        }
    }
}

@Suite("Routing, operations and errors")
struct OperationsTests {
    @Test func unknownPathsAndWrongMethodsAreProblems() throws {
        try withService { port, _ in
            let missing = try send(port, "GET", "/nope")
            #expect(missing.status == 404)
            #expect(try jsonObject(missing)["type"] as? String == "/problems/not-found")

            let wrongMethod = try send(port, "GET", "/evaluate")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("Allow") == "POST")
            #expect(try jsonObject(wrongMethod)["type"] as? String == "/problems/method-not-allowed")

            let deleteGraph = try send(port, "DELETE", "/graph.dot")
            #expect(deleteGraph.status == 405)
            #expect(deleteGraph.header("Allow") == "GET, HEAD")
        }
    }

    @Test func healthReadinessAndDraining() throws {
        try withService { port, service throws in
            #expect(try send(port, "GET", "/healthz").status == 200)
            #expect(try send(port, "GET", "/readyz").status == 200)
            service.isDraining = true
            #expect(try send(port, "GET", "/readyz").status == 503)
            #expect(try send(port, "GET", "/healthz").status == 200)
        }
    }

    @Test func metricsCountRequestsByRouteAndStatus() throws {
        try withService { port, _ in
            _ = try postJSON(port, "/evaluate", seedRequest)
            _ = try send(port, "GET", "/nope")
            let metrics = try send(port, "GET", "/metrics")
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
        try withService { port, _ in
            let served = try send(port, "GET", "/openapi.yaml")
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
}
