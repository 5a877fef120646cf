import HTTPServer
import MicrogradGraph

/// The HTTP side of a representation, shared by `POST /evaluate` and `GET /graph.*`: choosing the format,
/// and the response that carries it.
enum GraphRepresentation {
    /// The format from `?format=` (400 if it names none) or else `Accept` (406 if nothing offered is acceptable).
    static func choose(_ request: HTTPRequest, default fallback: GraphFormat) -> Result<GraphFormat, ServiceProblem> {
        if let parameter = request.queryValue("format") {
            guard let format = GraphFormat(named: parameter) else {
                return .failure(.invalidRequest("format must be one of \(GraphFormat.names); got '\(parameter)'."))
            }
            return .success(format)
        }
        guard let format = GraphFormat.negotiate(accept: request.header("Accept"), default: fallback) else {
            return .failure(.notAcceptable("Available representations: \(GraphFormat.mediaTypeNames)."))
        }
        return .success(format)
    }

    static func response(
        for graph: EvaluatedGraph, id: String?, format: GraphFormat, pipeline: EvaluationPipeline,
        skeleton: JSONSkeleton? = nil
    ) -> HTTPResponse {
        switch pipeline.represent(graph, id: id, as: format, skeleton: skeleton) {
        case .success(let body):
            // One array (a concatenation allocated three).
            id.map { HTTPResponse(status: 200, headers: [("Content-Type", format.contentType), ("X-Graph-Id", $0)], body: body) }
                ?? HTTPResponse(status: 200, headers: [("Content-Type", format.contentType)], body: body)
        case .failure(let problem):
            .problem(problem)
        }
    }
}
