import HTTPServer

/// Health, readiness, metrics and the API's own description.
struct OperationsRoutes: Sendable {
    let metrics: ServiceMetrics

    func health(_ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array(#"{"status":"ok"}"#.utf8))
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
