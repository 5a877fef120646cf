import HTTPServer
import MicrogradGraph

/// Health, readiness, metrics and the API's own description.
struct OperationsRoutes: Sendable {
    let metrics: ServiceMetrics
    let store: any GraphStore
    let isDraining: @Sendable () -> Bool

    func health(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: 200, headers: Self.healthHeaders, body: Self.healthBody)
    }

    // Built once: probes and load balancers call /healthz often, and copies of these arrays allocate nothing.
    // Literals, so the compiler emits them as static objects, whose reference counts are never written: a body
    // made at run time (`Array("...".utf8)`) had its count bumped by every request on every worker thread.
    private static let healthHeaders = [("Content-Type", "application/json")]
    private static let healthBody: [UInt8] = [  // {"status":"ok"}
        0x7B, 0x22, 0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x22, 0x3A, 0x22, 0x6F, 0x6B, 0x22, 0x7D,
    ]

    /// 503 while draining, so load balancers stop sending traffic before the process stops.
    func ready(_ request: HTTPRequest) -> HTTPResponse {
        guard !isDraining() else {
            return .problem(ServiceProblem.serverRefusal(status: 503, detail: "The service is shutting down."))
        }
        return health(request)
    }

    func metrics(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: metrics.exposition() + store.metricsExposition())
    }

    func openAPI(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(
            status: 200, headers: [("Content-Type", "application/yaml; charset=utf-8")], body: Array(OpenAPIDocument.yaml.utf8))
    }
}
