import HTTPServer
import MicrogradGraph

/// A problem as the HTTP API answers it (RFC 9457): the graph layer's ``Problem`` mapped to a status and a type
/// URI (`/problems/<name>`), or one of the service's own (not found, method not allowed, renderer down...).
public struct ServiceProblem: Error, Sendable, Equatable {
    /// The last segment of the type URI.
    public var name: String
    public var title: String
    public var status: Int
    public var detail: String
    /// Where in the request, when the problem comes from the graph layer.
    public var location: Problem.Location

    public init(name: String, title: String, status: Int, detail: String, location: Problem.Location = .init()) {
        self.name = name; self.title = title; self.status = status; self.detail = detail; self.location = location
    }

    /// The one mapping from the graph layer's kinds to HTTP.
    public init(_ problem: Problem) {
        let status = switch problem.kind {
        case .malformedJSON, .invalidRequest: 400
        case .invalidGraph, .invalidExpression, .invalidValues: 422
        case .tooLarge: 413
        }
        self.init(name: problem.kind.rawValue, title: problem.kind.title, status: status, detail: problem.detail,
                  location: problem.location)
    }

    /// A relative reference, resolved against the service.
    public var type: String { "/problems/" + name }

    /// The `application/problem+json` body.
    public var body: [UInt8] {
        GraphEncoder.problem(type: type, title: title, status: status, detail: detail, location: location)
    }

    static func invalidRequest(_ detail: String) -> ServiceProblem {
        ServiceProblem(Problem.invalidRequest(detail, pointer: nil))
    }

    static func notFound(_ detail: String) -> ServiceProblem {
        ServiceProblem(name: "not-found", title: "Not found", status: 404, detail: detail)
    }

    static func methodNotAllowed(method: String, path: String, allow: [String]) -> ServiceProblem {
        ServiceProblem(
            name: "method-not-allowed", title: "Method not allowed", status: 405,
            detail: "\(path) answers \(allow.joined(separator: ", ")), not \(method).")
    }

    static func unsupportedMediaType(_ contentType: String) -> ServiceProblem {
        ServiceProblem(
            name: "unsupported-media-type", title: "Unsupported media type", status: 415,
            detail: "The body must be application/json, not \(contentType) (curl: --json, or -H 'Content-Type: application/json').")
    }

    public static func notAcceptable(_ detail: String) -> ServiceProblem {
        ServiceProblem(name: "not-acceptable", title: "Not acceptable", status: 406, detail: detail)
    }

    static func renderUnavailable(_ detail: String) -> ServiceProblem {
        ServiceProblem(name: "renderer-unavailable", title: "SVG renderer unavailable", status: 503, detail: detail)
    }

    static func renderLimit(_ detail: String) -> ServiceProblem {
        ServiceProblem(name: "render-limit", title: "Graph too large to render", status: 422, detail: detail)
    }

    static func storeUnavailable(_ detail: String) -> ServiceProblem {
        ServiceProblem(name: "store-unavailable", title: "Graph store unavailable", status: 503, detail: detail)
    }

    /// The server's own refusals (from HTTPServer, before any route runs).
    static func serverRefusal(status: Int, detail: String) -> ServiceProblem {
        switch status {
        case 413: ServiceProblem(Problem.tooLarge(detail))
        case 431: ServiceProblem(name: "headers-too-large", title: "Header fields too large", status: 431, detail: detail)
        case 503: ServiceProblem(name: "unavailable", title: "Service unavailable", status: 503, detail: detail)
        default: ServiceProblem(name: "bad-request", title: "Bad request", status: status, detail: detail)
        }
    }
}

extension HTTPResponse {
    /// An RFC 9457 `application/problem+json` response for `problem`.
    static func problem(_ problem: ServiceProblem, headers: [(String, String)] = []) -> HTTPResponse {
        // A store that cannot answer is retried: the Redis store's breaker probes again within a second.
        let retry = problem.name == "store-unavailable" ? [("Retry-After", "1")] : []
        return HTTPResponse(
            status: problem.status, headers: [("Content-Type", "application/problem+json")] + headers + retry,
            body: problem.body)
    }

    static func problem(_ problem: Problem) -> HTTPResponse {
        .problem(ServiceProblem(problem))
    }
}
