import HTTPServer
import Micrograd
import MicrogradGraph

/// `POST /evaluate`: decode a graph or expression, run forward and backward, keep the result, answer in the
/// representation asked for (`?format=` or `Accept`).
struct EvaluateRoute: Sendable {
    let limits: GraphLimits
    let store: GraphStore
    let metrics: ServiceMetrics
    let renderer: SVGRenderer

    /// Tapes grown past this are given back to the allocator after the request, so one huge graph does not
    /// pin its memory in a worker thread for the rest of the process.
    static let retainedTapeCapacity = 1 << 18

    func respond(_ request: HTTPRequest) -> HTTPResponse {
        if let contentType = request.header("Content-Type"), !Self.isJSON(contentType) {
            return .problem(.unsupportedMediaType(contentType))
        }
        let format: GraphFormat
        switch GraphRepresentation.choose(request, default: .json) {
        case .success(let chosen): format = chosen
        case .failure(let problem): return .problem(problem)
        }
        do throws(Problem) {
            let spec = try GraphRequestDecoder.decode(request.body, limits: limits)
            if format == .svg, spec.count > renderer.configuration.maxNodes {
                throw Problem.renderLimit(
                    "SVG is drawn for graphs of up to \(renderer.configuration.maxNodes) nodes; this one has \(spec.count). "
                        + "Ask for format=dot or json instead.")
            }
            let tape = Tape.current
            let graph = GraphEvaluator.evaluate(spec, on: tape)
            if tape.capacity > Self.retainedTapeCapacity { tape.removeAll(keepingCapacity: false) }
            metrics.recordGraph(nodes: spec.count)

            let id = GraphStore.makeID()
            store.insert(graph, id: id)
            return GraphRepresentation.response(for: graph, id: id, format: format, renderer: renderer)
        } catch {
            return .problem(error)
        }
    }

    /// `application/json` or any `+json` type, parameters (charset) ignored.
    static func isJSON(_ contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}
