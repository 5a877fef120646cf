import Foundation
import HTTPServer
import HTTPTesting
import Logging
import MicrogradService

/// Runs `body` against a real service on 127.0.0.1 and a free port; always stops it.
func withService<R>(
    _ configuration: ServiceConfiguration = ServiceConfiguration(),
    _ body: (_ port: Int, _ service: GraphService) throws -> R
) throws -> R {
    var configuration = configuration
    configuration.server.host = "127.0.0.1"
    configuration.server.port = 0
    configuration.server.threads = 2
    let running = try GraphService.serve(configuration: configuration, logger: silentLogger)
    defer { running.shutdown(gracePeriod: .seconds(2)) }
    return try body(running.port, running.service)
}

let silentLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// The default configuration on 127.0.0.1 and a free port.
var loopback: ServiceConfiguration {
    ServiceConfiguration(server: ServerConfiguration(host: "127.0.0.1", port: 0, threads: 2))
}

/// One request answered by the service's request-to-response function, no socket: for routing and formats.
/// `target` is a path and an optional plain query (`/graph.dot?id=abc&format=svg`, no percent-decoding).
func respond(
    _ service: GraphService, _ method: String, _ target: String, headers: [(String, String)] = [], body: String = ""
) -> HTTPResponse {
    let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    let query: [(name: String, value: String)] = parts.count < 2 ? [] : parts[1].split(separator: "&").map { item in
        let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return (name: String(pair[0]), value: pair.count > 1 ? String(pair[1]) : "")
    }
    return service.respond(to: HTTPRequest(
        method: method, path: String(parts[0]), query: query, headers: headers.map { (name: $0.0, value: $0.1) },
        body: Array(body.utf8)))
}

/// Runs `body` against a service without a socket: requests go straight to `GraphService.respond(to:)`.
/// For routing, formats and problems; the HTTP layer's own behaviour needs ``withService(_:_:)``.
func withServiceInProcess<R>(
    _ configuration: ServiceConfiguration = ServiceConfiguration(),
    _ body: (_ service: GraphService, _ sameService: GraphService) throws -> R
) rethrows -> R {
    let service = GraphService(configuration: configuration, logger: silentLogger)
    return try body(service, service)
}

/// Where a test's requests go: a port (a real socket) or a service itself (its request-to-response function).
protocol ServiceEndpoint {
    func exchange(_ method: String, _ target: String, headers: [(String, String)], body: String) throws -> RawResponse
}

extension Int: ServiceEndpoint {
    /// One request on a fresh connection to this port.
    func exchange(_ method: String, _ target: String, headers: [(String, String)], body: String) throws -> RawResponse {
        try TestConnection(port: self).request(method, target, headers: headers, body: Array(body.utf8))
    }
}

extension GraphService: ServiceEndpoint {
    func exchange(_ method: String, _ target: String, headers: [(String, String)], body: String) throws -> RawResponse {
        let response = MicrogradServiceTests.respond(self, method, target, headers: headers, body: body)
        return RawResponse(status: response.status, headers: response.headers.map { (name: $0.0, value: $0.1) },
                           body: response.body)
    }
}

func send(
    _ endpoint: some ServiceEndpoint, _ method: String, _ target: String, headers: [(String, String)] = [], body: String = ""
) throws -> RawResponse {
    try endpoint.exchange(method, target, headers: headers, body: body)
}

func postJSON(_ endpoint: some ServiceEndpoint, _ target: String = "/evaluate", _ body: String, headers: [(String, String)] = [])
    throws -> RawResponse
{
    try send(endpoint, "POST", target, headers: [("Content-Type", "application/json")] + headers, body: body)
}

/// The response body as a JSON object (Foundation is fine here: tests are not the hot path).
func jsonObject(_ response: RawResponse) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(response.text.prefix(200))")
    }
    return object
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Node `id`'s entry in an evaluate response.
func node(_ id: String, in object: [String: Any]) -> [String: Any]? {
    (object["nodes"] as? [[String: Any]])?.first { $0["id"] as? String == id }
}

let seedRequest = """
    {"nodes": [
       {"id": "a", "value": 2.0, "label": "a"},
       {"id": "b", "value": -3.0},
       {"id": "c", "value": 10.0},
       {"id": "e", "op": "mul", "inputs": ["a", "b"]},
       {"id": "d", "op": "add", "inputs": ["e", "c"]},
       {"id": "p", "op": "pow", "inputs": ["d"], "exponent": 2}],
     "output": "d"}
    """

let neuronRequest = """
    {"expression": "tanh(x1*w1 + x2*w2 + b)", "values": {"x1": 2, "w1": -3, "x2": 0, "w2": 1, "b": 6.881373587019543}}
    """

/// The repository's root, found from this file's path (tests read openapi.yaml and README.md from it).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
