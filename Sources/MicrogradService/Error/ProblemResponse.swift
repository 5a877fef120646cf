import HTTPServer
import MicrogradGraph

extension HTTPResponse {
    /// An RFC 9457 `application/problem+json` response for `problem`.
    static func problem(_ problem: Problem, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(
            status: problem.status,
            headers: [("Content-Type", "application/problem+json")] + headers,
            body: GraphEncoder.problem(problem, instance: nil))
    }
}

extension Problem {
    static func notFound(_ detail: String) -> Problem {
        Problem(type: typeURI("not-found"), title: "Not found", status: 404, detail: detail)
    }

    static func methodNotAllowed(method: String, path: String, allow: [String]) -> Problem {
        Problem(
            type: typeURI("method-not-allowed"), title: "Method not allowed", status: 405,
            detail: "\(path) answers \(allow.joined(separator: ", ")), not \(method).")
    }

    static func unsupportedMediaType(_ contentType: String) -> Problem {
        Problem(
            type: typeURI("unsupported-media-type"), title: "Unsupported media type", status: 415,
            detail: "The body must be application/json, not \(contentType) (curl: --json, or -H 'Content-Type: application/json').")
    }

    static func notAcceptable(_ detail: String) -> Problem {
        Problem(type: typeURI("not-acceptable"), title: "Not acceptable", status: 406, detail: detail)
    }

    static func renderUnavailable(_ detail: String) -> Problem {
        Problem(type: typeURI("renderer-unavailable"), title: "SVG renderer unavailable", status: 503, detail: detail)
    }

    static func renderLimit(_ detail: String) -> Problem {
        Problem(type: typeURI("render-limit"), title: "Graph too large to render", status: 422, detail: detail)
    }

    static func storeUnavailable(_ detail: String) -> Problem {
        Problem(type: typeURI("store-unavailable"), title: "Graph store unavailable", status: 503, detail: detail)
    }

    /// The server's own refusals (from HTTPServer, before any route runs).
    static func serverRefusal(status: Int, detail: String) -> Problem {
        switch status {
        case 413: .tooLarge(detail)
        case 431: Problem(type: typeURI("headers-too-large"), title: "Header fields too large", status: 431, detail: detail)
        case 503: Problem(type: typeURI("unavailable"), title: "Service unavailable", status: 503, detail: detail)
        default: Problem(type: typeURI("bad-request"), title: "Bad request", status: status, detail: detail)
        }
    }
}
