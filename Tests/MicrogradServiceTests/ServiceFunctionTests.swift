import Foundation
import HTTPServer
import MicrogradService
import Testing

/// Routing and representations through `GraphService.respond(to:)`, without sockets.
@Suite("The service as a function")
struct ServiceFunctionTests {
    @Test func graphJGFAndItsOldNameServeTheSameDocument() throws {
        let service = GraphService()
        let evaluated = respond(service, "POST", "/evaluate", headers: [("Content-Type", "application/json")], body: seedRequest)
        #expect(evaluated.status == 200)
        let id = try #require(evaluated.header("X-Graph-Id"))
        let jgf = respond(service, "GET", "/graph.jgf?id=\(id)")
        #expect(jgf.status == 200 && jgf.header("Content-Type") == "application/vnd.jgf+json")
        #expect(jgf.body == respond(service, "GET", "/graph.json?id=\(id)").body)
    }

    @Test func everyPathInTheSpecIsRouted() throws {
        let spec = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let paths = spec.split(separator: "\n").filter { $0.hasPrefix("  /") && $0.hasSuffix(":") }
            .map { String($0.dropFirst(2).dropLast()) }
        #expect(paths.contains("/graph.jgf") && paths.contains("/evaluate"))
        let service = GraphService()
        for path in paths {
            let response = respond(service, "OPTIONS", path)
            #expect(response.status == 405, "\(path) is in openapi.yaml but not routed")
        }
    }

    @Test func formatsByParameterAndByAccept() {
        let service = GraphService()
        let json = [("Content-Type", "application/json")]
        #expect(respond(service, "POST", "/evaluate?format=DOT", headers: json, body: seedRequest)
            .header("Content-Type") == "text/vnd.graphviz; charset=utf-8")
        #expect(respond(service, "POST", "/evaluate", headers: json + [("Accept", "application/vnd.jgf+json")], body: seedRequest)
            .header("Content-Type") == "application/vnd.jgf+json")
        let unknown = respond(service, "POST", "/evaluate?format=xml", headers: json, body: seedRequest)
        #expect(unknown.status == 400 && String(decoding: unknown.body, as: UTF8.self).contains(
            "format must be one of json, dot, jgf, svg; got 'xml'."))
        // GET /graph.<ext> is named by its path: Accept does not change it.
        #expect(respond(service, "GET", "/graph.dot", headers: [("Accept", "text/html")]).status == 200)
        #expect(respond(service, "POST", "/evaluate", headers: json + [("Accept", "text/html")], body: seedRequest).status == 406)
    }
}
