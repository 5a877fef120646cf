import HTTPServer
import MicrogradGraph
import Synchronization

/// Whether the service still wants traffic: false from the start of a graceful stop.
final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)

    var isDraining: Bool {
        get { draining.load(ordering: .relaxed) }
        set { draining.store(newValue, ordering: .relaxed) }
    }
}

/// Health, readiness, metrics and the API's own description.
struct OperationsRoutes: Sendable {
    let metrics: ServiceMetrics
    let readiness: Readiness

    func health(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: 200, headers: Self.healthHeaders, body: Self.healthBody)
    }

    // Built once: probes and load balancers call /healthz often, and copies of these arrays allocate nothing.
    private static let healthHeaders = [("Content-Type", "application/json")]
    private static let healthBody = Array(#"{"status":"ok"}"#.utf8)

    /// 503 while draining, so load balancers stop sending traffic before the process stops.
    func ready(_ request: HTTPRequest) -> HTTPResponse {
        guard !readiness.isDraining else {
            return .problem(Problem.serverRefusal(status: 503, detail: "The service is shutting down."))
        }
        return health(request)
    }

    func metrics(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: metrics.exposition())
    }

    func openAPI(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(
            status: 200, headers: [("Content-Type", "application/yaml; charset=utf-8")], body: Array(OpenAPIDocument.yaml.utf8))
    }
}
