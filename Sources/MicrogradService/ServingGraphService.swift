import HTTPServer
import Logging
import Synchronization

/// A ``GraphService`` behind a started `HTTPServer`: the one place the two are wired together. The HTTP server's
/// drain state is the only one: `/readyz` reads it, so it turns 503 the moment ``shutdown(gracePeriod:)`` begins.
public final class ServingGraphService: Sendable {
    public let service: GraphService
    private let server: HTTPServer

    fileprivate init(service: GraphService, server: HTTPServer) {
        self.service = service
        self.server = server
    }

    /// The bound port (useful when the configuration asked for port 0).
    public var port: Int { server.port }

    /// Not ready from now on (`/readyz` answers 503, answers close their connections) while still accepting:
    /// the first step of `micrograd serve`'s stop, before ``shutdown(gracePeriod:)``.
    public func beginDraining() {
        server.beginDraining()
    }

    /// Graceful stop: `/readyz` answers 503, new connections are refused, requests in flight get `gracePeriod`
    /// to finish. Blocks until the server has stopped.
    public func shutdown(gracePeriod: Duration) {
        server.shutdown(gracePeriod: gracePeriod)
    }
}

extension GraphService {
    /// Starts the graph API on `configuration.server`'s address: the entry point of `micrograd serve` and of
    /// the tests that talk to a real socket. Collaborators as in ``init(configuration:store:renderer:metrics:logger:isDraining:)``;
    /// `accessLog` as in `HTTPServer`'s initializer.
    public static func serve(
        configuration: ServiceConfiguration = ServiceConfiguration(),
        store: (any GraphStore)? = nil,
        renderer: SVGRenderer? = nil,
        metrics: ServiceMetrics = ServiceMetrics(),
        logger: Logger = Logger(label: "micrograd"),
        accessLog: (any AccessLogSink)? = nil
    ) throws -> ServingGraphService {
        // The server's handler holds the service, so the service reaches the server weakly (no cycle).
        let link = ServerLink()
        let service = GraphService(
            configuration: configuration, store: store, renderer: renderer, metrics: metrics, logger: logger,
            isDraining: { link.isDraining })
        let server = HTTPServer(
            configuration: configuration.server, logger: logger,
            handler: { service.answer(to: $0) }, errorResponder: GraphService.errorResponse, accessLog: accessLog)
        link.set(server)
        try server.start()
        return ServingGraphService(service: service, server: server)
    }
}

private final class ServerLink: Sendable {
    private struct Weak: ~Copyable { weak var server: HTTPServer? }
    private let link = Mutex(Weak())

    func set(_ server: HTTPServer) { link.withLock { $0.server = server } }

    var isDraining: Bool { link.withLock { $0.server?.isDraining ?? false } }
}
