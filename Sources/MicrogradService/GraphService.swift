import HTTPServer
import Logging
import MicrogradGraph

/// The graph API as a request-to-response function: routes, the graph store, metrics.
/// It owns no sockets: `serve` (or a test) puts it behind an `HTTPServer`.
public final class GraphService: Sendable {
    public let configuration: ServiceConfiguration
    public let store: GraphStore
    public let metrics: ServiceMetrics
    let renderer: SVGRenderer
    let logger: Logger
    private let readiness = Readiness()
    private let router: Router

    public init(configuration: ServiceConfiguration = ServiceConfiguration(), logger: Logger = Logger(label: "micrograd")) {
        self.configuration = configuration
        self.logger = logger
        store = GraphStore(limits: configuration.store, remembersMostRecent: !configuration.isPrivate)
        metrics = ServiceMetrics()
        renderer = SVGRenderer(configuration: configuration.svg)
        router = Self.makeRouter(
            evaluate: EvaluateRoute(limits: configuration.graphLimits, store: store, metrics: metrics, renderer: renderer),
            graphs: GraphRoutes(store: store, renderer: renderer),
            operations: OperationsRoutes(metrics: metrics, readiness: readiness))
    }

    /// True once a stop has begun: /readyz answers 503 so load balancers stop sending traffic.
    public var isDraining: Bool {
        get { readiness.isDraining }
        set { readiness.isDraining = newValue }
    }

    /// Answers one request; records its metrics.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let started = ContinuousClock.now
        let (response, matched) = router.route(request)
        metrics.recordRequest(
            route: matched ? request.path : "unmatched", method: request.method, status: response.status,
            duration: started.duration(to: .now))
        return response
    }

    /// How the HTTP server words its own refusals (413, 431, ...): as problems, like every other error.
    public static func errorResponse(status: Int, detail: String) -> HTTPResponse {
        .problem(Problem.serverRefusal(status: status, detail: detail))
    }

    private static func makeRouter(evaluate: EvaluateRoute, graphs: GraphRoutes, operations: OperationsRoutes) -> Router {
        var router = Router(
            notFound: { request in
                .problem(.notFound("Nothing is served at \(request.path). See /openapi.yaml for the API."))
            },
            methodNotAllowed: { request, allow in
                .problem(.methodNotAllowed(method: request.method, path: request.path, allow: allow),
                         headers: [("Allow", allow.joined(separator: ", "))])
            })
        router.post("/evaluate", evaluate.respond)
        router.get("/graph.dot") { graphs.respond(to: $0, format: .dot) }
        router.get("/graph.json") { graphs.respond(to: $0, format: .jgf) }
        router.get("/graph.svg") { graphs.respond(to: $0, format: .svg) }
        router.get("/healthz", operations.health)
        router.get("/readyz", operations.ready)
        router.get("/metrics", operations.metrics)
        router.get("/openapi.yaml", operations.openAPI)
        PageRoutes.register(in: &router)
        return router
    }
}
