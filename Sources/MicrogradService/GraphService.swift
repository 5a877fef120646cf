import HTTPServer
import Logging
import MicrogradGraph

/// The graph API as a request-to-response function: routes over a graph store, a renderer and metrics,
/// each passed in (or the defaults made from the configuration).
/// It owns no sockets: ``serve(configuration:store:renderer:metrics:logger:)`` puts it behind an `HTTPServer`.
public final class GraphService: Sendable {
    public let configuration: ServiceConfiguration
    public let store: any GraphStore
    public let metrics: ServiceMetrics
    public let renderer: SVGRenderer
    let logger: Logger
    private let router: Router
    /// `/graphs` and `/graphs/{gid}...`: path patterns, which the exact-path router does not do.
    private let registered: RegisteredGraphRoutes

    /// - Parameters:
    ///   - store: where evaluated and registered graphs are kept; by default in this process's memory,
    ///     bounded by `configuration.store`.
    ///   - renderer: draws SVG; by default Graphviz with `configuration.svg`.
    ///   - isDraining: whether a stop has begun (`/readyz` answers 503 from then on); `serve` wires it to the
    ///     HTTP server's own drain state.
    public init(
        configuration: ServiceConfiguration = ServiceConfiguration(),
        store: (any GraphStore)? = nil,
        renderer: SVGRenderer? = nil,
        metrics: ServiceMetrics = ServiceMetrics(),
        logger: Logger = Logger(label: "micrograd"),
        isDraining: @escaping @Sendable () -> Bool = { false }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.store = store ?? InMemoryGraphStore(limits: configuration.store)
        self.metrics = metrics
        self.renderer = renderer ?? SVGRenderer(configuration: configuration.svg)
        let pipeline = EvaluationPipeline(limits: configuration.graphLimits, renderer: self.renderer)
        registered = RegisteredGraphRoutes(pipeline: pipeline, store: self.store, metrics: metrics, logger: logger)
        router = Self.makeRouter(
            evaluate: EvaluateRoute(pipeline: pipeline, store: self.store, metrics: metrics, logger: logger),
            graphs: GraphRoutes(store: self.store, pipeline: pipeline, isPrivate: configuration.isPrivate),
            operations: OperationsRoutes(metrics: metrics, store: self.store, isDraining: isDraining))
    }

    /// Answers one request, waiting for a deferred answer (see ``answer(to:)``): for callers without a server.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        answer(to: request).resolved()
    }

    /// Answers one request; records its metrics. With a store that writes later (Redis) an evaluation's answer is
    /// deferred (`HTTPResponse.deferred`): the HTTP server sends it when the store has answered.
    public func answer(to request: HTTPRequest) -> HTTPResponse {
        // The server's start when there is one (a clock read fewer per request); not ContinuousClock: see
        // monotonicNanoseconds.
        let started = request.startNanoseconds != 0 ? request.startNanoseconds : monotonicNanoseconds()
        let response: HTTPResponse, route: String
        if let (answer, pattern) = registered.route(request) {
            // Labelled by pattern: one series per gid would grow without bound.
            (response, route) = (answer, pattern)
        } else {
            let (answer, matched) = router.route(request)
            (response, route) = (answer, matched ? request.path : "unmatched")
        }
        if let later = response.deferred {
            later.whenAnswered { [metrics, method = request.method] answer in
                metrics.recordRequest(route: route, method: method, status: answer.status,
                                      nanoseconds: monotonicNanoseconds() &- started)
            }
            return response
        }
        metrics.recordRequest(route: route, method: request.method, status: response.status,
                              nanoseconds: monotonicNanoseconds() &- started)
        return response
    }

    /// How the HTTP server words its own refusals (413, 431, ...): as problems, like every other error.
    public static func errorResponse(status: Int, detail: String) -> HTTPResponse {
        .problem(ServiceProblem.serverRefusal(status: status, detail: detail))
    }

    private static func makeRouter(evaluate: EvaluateRoute, graphs: GraphRoutes, operations: OperationsRoutes) -> Router {
        var router = Router(
            notFound: { request in
                .problem(.notFound("Nothing is served at \(request.path). See /openapi.yaml for the API."))
            },
            // The router adds the Allow header.
            methodNotAllowed: { request, allow in
                .problem(.methodNotAllowed(method: request.method, path: request.path, allow: allow))
            })
        router.post("/evaluate", evaluate.respond)
        router.get("/graph.dot") { graphs.respond(to: $0, format: .dot) }
        router.get("/graph.jgf") { graphs.respond(to: $0, format: .jgf) }
        router.get("/graph.json") { graphs.respond(to: $0, format: .jgf) }  // the old name of /graph.jgf
        router.get("/graph.svg") { graphs.respond(to: $0, format: .svg) }
        router.get("/healthz", operations.health)
        router.get("/readyz", operations.ready)
        router.get("/metrics", operations.metrics)
        router.get("/openapi.yaml", operations.openAPI)
        PageRoutes.register(in: &router)
        return router
    }
}
