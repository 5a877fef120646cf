/// Exact (method, path) routing, no patterns: an unknown path goes to `notFound`; a known path with another method
/// goes to `methodNotAllowed` with the path's `Allow` list; HEAD is answered by the GET handler (the server sends
/// HEAD responses without their body, keeping the GET's Content-Length).
public struct Router: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    public typealias MethodNotAllowedResponder = @Sendable (_ request: HTTPRequest, _ allow: [String]) -> HTTPResponse

    /// A service has a handful of routes: a linear scan with string equality (length first) beats hashing the path.
    private var routes: [Route] = []
    private let notFound: Handler
    private let methodNotAllowed: MethodNotAllowedResponder

    public init(
        notFound: @escaping Handler = { request in
            HTTPResponse.plainText(status: 404, "404 Not Found: \(request.path)\n")
        },
        methodNotAllowed: @escaping MethodNotAllowedResponder = { request, allow in
            HTTPResponse.plainText(status: 405, "405 Method Not Allowed: \(request.method) \(request.path)\n")
        }
    ) {
        self.notFound = notFound
        self.methodNotAllowed = methodNotAllowed
    }

    /// Registers `handler` for `method` on `path`; a later registration of the same pair replaces the earlier one.
    public mutating func on(_ method: String, _ path: String, _ handler: @escaping Handler) {
        let entry = MethodHandler(method: method, handler: handler)
        guard let routeIndex = routes.firstIndex(where: { $0.path == path }) else {
            routes.append(Route(path: path, methods: [entry]))
            return
        }
        var methods = routes[routeIndex].methods
        if let methodIndex = methods.firstIndex(where: { $0.method == method }) {
            methods[methodIndex] = entry
        } else {
            methods.append(entry)
        }
        routes[routeIndex] = Route(path: path, methods: methods)
    }

    public mutating func get(_ path: String, _ handler: @escaping Handler) { on("GET", path, handler) }
    public mutating func post(_ path: String, _ handler: @escaping Handler) { on("POST", path, handler) }

    /// The methods `path` answers (HEAD included wherever GET is), sorted; nil for an unknown path.
    public func allowedMethods(for path: String) -> [String]? {
        guard let methods = methods(for: path) else { return nil }
        var allow = Set(methods.map(\.method))
        if allow.contains("GET") { allow.insert("HEAD") }
        return allow.sorted()
    }

    /// True when `request` reaches a registered handler (useful for labelling metrics by route).
    public func matches(_ request: HTTPRequest) -> Bool {
        handler(for: request) != nil
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        route(request).response
    }

    /// The response, and whether a registered handler produced it (one lookup, for callers that label by route).
    public func route(_ request: HTTPRequest) -> (response: HTTPResponse, matched: Bool) {
        if let response = callHandler(for: request) { return (response, true) }
        guard let allow = allowedMethods(for: request.path) else { return (notFound(request), false) }
        var response = methodNotAllowed(request, allow)
        if response.header("Allow") == nil {
            response.headers.append(("Allow", allow.joined(separator: ", ")))
        }
        return (response, false)
    }

    /// The registered handler's answer, nil when none matches. The handler is called where it is found, through
    /// borrowed references: returning the closure retained and released it and the objects holding it, which
    /// every worker thread shares, so each request moved their reference counts' cache lines between cores
    /// (perf: ~1% of a `GET /healthz`'s CPU).
    private func callHandler(for request: HTTPRequest) -> HTTPResponse? {
        let length = request.path.utf8.count
        return routes.withUnsafeBufferPointer { routes -> HTTPResponse? in
            for index in routes.indices where routes[index].length == length && routes[index].path == request.path {
                return Unmanaged.passUnretained(routes[index])._withUnsafeGuaranteedRef { route in
                    route.methods.withUnsafeBufferPointer { methods -> HTTPResponse? in
                        for index in methods.indices where methods[index].method == request.method {
                            return Unmanaged.passUnretained(methods[index])._withUnsafeGuaranteedRef { $0.handler(request) }
                        }
                        guard request.method == "HEAD" else { return nil }
                        for index in methods.indices where methods[index].method == "GET" {
                            return Unmanaged.passUnretained(methods[index])._withUnsafeGuaranteedRef { $0.handler(request) }
                        }
                        return nil
                    }
                }
            }
            return nil
        }
    }

    private func handler(for request: HTTPRequest) -> Handler? {
        guard let route = route(for: request.path) else { return nil }
        if let match = route.methods.first(where: { $0.method == request.method }) { return match.handler }
        return request.method == "HEAD" ? route.methods.first(where: { $0.method == "GET" })?.handler : nil
    }

    private func methods(for path: String) -> [MethodHandler]? {
        route(for: path)?.methods
    }

    private func route(for path: String) -> Route? {
        // Lengths first (O(1) for native and small strings): unequal small strings otherwise go through the
        // standard library's slow comparison.
        let length = path.utf8.count
        return routes.first(where: { $0.length == length && $0.path == path })
    }
}

/// A path and its handlers. Classes, not tuples in arrays: a closure stored in an array element is called
/// through reabstraction thunks (a few hundred instructions a request).
private final class Route: Sendable {
    let path: String
    let length: Int
    let methods: [MethodHandler]

    init(path: String, methods: [MethodHandler]) {
        self.path = path
        length = path.utf8.count
        self.methods = methods
    }
}

private final class MethodHandler: Sendable {
    let method: String
    let handler: Router.Handler

    init(method: String, handler: @escaping Router.Handler) {
        self.method = method
        self.handler = handler
    }
}
