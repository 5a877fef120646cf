import HTTPServer
import MicrogradGraph

/// Everything a running service is told: the HTTP server's settings and the graph API's own limits.
public struct ServiceConfiguration: Sendable {
    public var server: ServerConfiguration
    public var graphLimits: GraphLimits
    /// Bounds of the default (in-memory) graph store.
    public var store: InMemoryGraphStore.Limits
    /// Off: `GET /graph.*` without `?id=` serves the most recent graph. On: only by id.
    public var isPrivate: Bool
    public var svg: SVGRenderer.Configuration

    public init(
        server: ServerConfiguration = ServerConfiguration(),
        graphLimits: GraphLimits = GraphLimits(),
        store: InMemoryGraphStore.Limits = InMemoryGraphStore.Limits(),
        isPrivate: Bool = false,
        svg: SVGRenderer.Configuration = SVGRenderer.Configuration()
    ) {
        self.server = server
        self.graphLimits = graphLimits
        self.store = store
        self.isPrivate = isPrivate
        self.svg = svg
    }
}
