import HTTPServer
import MicrogradGraph

/// Turning an evaluated graph into a response body of the chosen format; shared by `POST /evaluate` and `GET /graph.*`.
enum GraphRepresentation {
    /// The format from `?format=` (400 if it names none) or else `Accept` (406 if nothing offered is acceptable).
    static func choose(_ request: HTTPRequest, default fallback: GraphFormat) -> Result<GraphFormat, Problem> {
        let parameter = request.queryValue("format")
        if let parameter, GraphFormat(rawValue: parameter.lowercased()) == nil {
            return .failure(.invalidRequest(
                "format must be one of json, dot, jgf, svg; got '\(parameter)'.", pointer: nil))
        }
        guard let format = GraphFormat.negotiate(
            formatParameter: parameter, accept: request.header("Accept"), default: fallback, allowed: GraphFormat.allCases)
        else {
            return .failure(.notAcceptable(
                "Available representations: application/json, text/vnd.graphviz, application/vnd.jgf+json, image/svg+xml."))
        }
        return .success(format)
    }

    /// 422 when a graph has more nodes than the renderer draws (Graphviz layout is superlinear).
    static func svgLimitProblem(nodes: Int, renderer: SVGRenderer) -> Problem? {
        guard nodes > renderer.configuration.maxNodes else { return nil }
        return .renderLimit(
            "SVG is drawn for graphs of up to \(renderer.configuration.maxNodes) nodes; this one has \(nodes). "
                + "Ask for DOT or JSON instead (format=dot, /graph.dot).")
    }

    static func response(for graph: EvaluatedGraph, id: String, format: GraphFormat, renderer: SVGRenderer) -> HTTPResponse {
        let headers: [(String, String)] = [("Content-Type", format.contentType), ("X-Graph-Id", id)]
        switch format {
        case .json:
            return HTTPResponse(status: 200, headers: headers, body: GraphEncoder.json(graph, graphID: id))
        case .jgf:
            return HTTPResponse(status: 200, headers: headers, body: GraphEncoder.jgf(graph, graphID: id))
        case .dot:
            return HTTPResponse(status: 200, headers: headers, body: GraphEncoder.dot(graph))
        case .svg:
            if let problem = svgLimitProblem(nodes: graph.spec.count, renderer: renderer) { return .problem(problem) }
            switch renderer.render(dot: GraphEncoder.dot(graph)) {
            case .success(let svg):
                return HTTPResponse(status: 200, headers: headers, body: svg)
            case .failure(.unavailable(let reason)):
                return .problem(.renderUnavailable("Graphviz 'dot' is not available on the server: \(reason)."))
            case .failure(.timedOut):
                return .problem(.renderUnavailable(
                    "Graphviz took longer than \(renderer.configuration.timeout) to lay out the graph."))
            case .failure(.outputTooLarge):
                return .problem(.renderLimit("The SVG would exceed \(renderer.configuration.maxOutputBytes) bytes."))
            case .failure(.failed(let message)):
                return .problem(.renderUnavailable("Graphviz failed: \(message)"))
            }
        }
    }
}
