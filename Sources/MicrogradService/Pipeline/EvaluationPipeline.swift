import MicrogradGraph

/// The one path from request bytes to a representation: decode (graph or expression form), evaluate on this
/// thread's tape, encode. `POST /evaluate` and `micrograd eval` both run it; `GET /graph.*` runs its last step.
public struct EvaluationPipeline: Sendable {
    public let limits: GraphLimits
    public let renderer: SVGRenderer

    public init(limits: GraphLimits = GraphLimits(), renderer: SVGRenderer = SVGRenderer()) {
        self.limits = limits
        self.renderer = renderer
    }

    /// Decodes and evaluates a request body. A graph too large to be drawn is refused before it is evaluated
    /// when SVG is the format asked for: no work is spent on an answer that cannot be given.
    public func evaluate(_ body: [UInt8], for format: GraphFormat) throws(ServiceProblem) -> EvaluatedGraph {
        let spec: GraphSpec
        do throws(Problem) {
            spec = try GraphRequestDecoder.decode(body, limits: limits)
        } catch {
            throw ServiceProblem(error)
        }
        if format == .svg, let problem = svgLimitProblem(nodes: spec.count) { throw problem }
        return GraphEvaluator.evaluate(spec)
    }

    /// `graph` in `format` (its media type is `format.contentType`); `id` is the id JSON and JGF carry.
    /// `skeleton`: the spec-only JSON of `graph`'s nodes, when the caller keeps one (a registered graph).
    public func represent(
        _ graph: EvaluatedGraph, id: String?, as format: GraphFormat, skeleton: JSONSkeleton? = nil
    ) -> Result<[UInt8], ServiceProblem> {
        switch format {
        case .json:
            if let skeleton { return .success(GraphEncoder.json(graph, graphID: id, skeleton: skeleton)) }
            return .success(GraphEncoder.json(graph, graphID: id))
        case .jgf: return .success(GraphEncoder.jgf(graph, graphID: id))
        case .dot: return .success(GraphEncoder.dot(graph))
        case .svg:
            if let problem = svgLimitProblem(nodes: graph.spec.count) { return .failure(problem) }
            return renderer.render(dot: GraphEncoder.dot(graph)).mapError { failure in
                switch failure {
                case .unavailable(let reason):
                    .renderUnavailable("Graphviz 'dot' is not available on the server: \(reason).")
                case .timedOut:
                    .renderUnavailable("Graphviz took longer than \(renderer.configuration.timeout) to lay out the graph.")
                case .outputTooLarge:
                    .renderLimit("The SVG would exceed \(renderer.configuration.maxOutputBytes) bytes.")
                case .failed(let message):
                    .renderUnavailable("Graphviz failed: \(message)")
                }
            }
        }
    }

    /// 422 when a graph has more nodes than the renderer draws (Graphviz layout is superlinear).
    func svgLimitProblem(nodes: Int) -> ServiceProblem? {
        guard nodes > renderer.configuration.maxNodes else { return nil }
        return .renderLimit(
            "SVG is drawn for graphs of up to \(renderer.configuration.maxNodes) nodes; this one has \(nodes). "
                + "Ask for DOT or JSON instead (format=dot, /graph.dot).")
    }
}
