import HTTPServer
import MicrogradGraph

/// `GET /graph.dot`, `/graph.jgf` (and its old name `/graph.json`), `/graph.svg`: a stored graph by `?id=`, or the most recent one
/// unless the service is private.
struct GraphRoutes: Sendable {
    let store: any GraphStore
    let pipeline: EvaluationPipeline
    let isPrivate: Bool

    func respond(to request: HTTPRequest, format: GraphFormat) -> HTTPResponse {
        let id = request.queryValue("id")
        let read: StoreRead<StoredEvaluation>
        if let id {
            read = store.evaluation(id: id)
        } else if isPrivate {
            return .problem(.notFound(
                "This server is private: ask for a graph by the id POST /evaluate returned (?id=...)."))
        } else {
            read = store.mostRecentEvaluation()
        }
        switch read {
        case .found(let stored):
            return GraphRepresentation.response(for: stored.graph, id: stored.id, format: format, pipeline: pipeline)
        case .absent:
            if let id { return .problem(.notFound("No graph with id '\(id)' is stored here (never made, or evicted).")) }
            return .problem(.notFound("No graph has been evaluated yet: POST one to /evaluate first."))
        case .unavailable(let reason):
            return .problem(.storeUnavailable("The graph store cannot answer: \(reason)."))
        }
    }
}
