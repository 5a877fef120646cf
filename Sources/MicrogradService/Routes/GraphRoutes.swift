import HTTPServer
import MicrogradGraph

/// `GET /graph.dot`, `/graph.json` (JGF), `/graph.svg`: a stored graph by `?id=`, or the most recent one.
struct GraphRoutes: Sendable {
    let store: GraphStore
    let renderer: SVGRenderer

    func respond(to request: HTTPRequest, format: GraphFormat) -> HTTPResponse {
        let id = request.queryValue("id")
        guard let (key, graph) = store.graph(id: id) else {
            if let id {
                return .problem(.notFound("No graph with id '\(id)' is stored here (never made, or evicted)."))
            }
            return .problem(.notFound(store.remembersMostRecent
                ? "No graph has been evaluated yet: POST one to /evaluate first."
                : "This server is private: ask for a graph by the id POST /evaluate returned (?id=...)."))
        }
        return GraphRepresentation.response(for: graph, id: key, format: format, renderer: renderer)
    }
}
