import HTTPServer
import Logging
import MicrogradGraph

/// `POST /evaluate`: decode a graph or expression, run forward and backward, keep the result, answer in the
/// representation asked for (`?format=` or `Accept`).
struct EvaluateRoute: Sendable {
    let limits: GraphLimits
    let store: any GraphStore
    let metrics: ServiceMetrics
    let renderer: SVGRenderer
    let logger: Logger

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
            if let batch = try ExpressionBatch.answer(request.body, limits: limits) {
                guard format == .json else { throw Problem.notAcceptable("A batch is answered in JSON only (application/json).") }
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: batch)
            }
            let spec = try GraphRequestDecoder.decode(request.body, limits: limits)
            // Refused before evaluating: no work spent on a graph that will not be drawn.
            if format == .svg, let problem = GraphRepresentation.svgLimitProblem(nodes: spec.count, renderer: renderer) {
                throw problem
            }
            let graph = GraphEvaluator.evaluate(spec)
            metrics.recordGraph(nodes: spec.count)

            // The answer does not wait on the store: a graph too large to keep, or a store that is down, still
            // gets its evaluation (GET /graph.* with this id then answers 404 or 503).
            let id = store.newEvaluationID()
            if case .notStored(.unavailable(let reason)) = store.putEvaluation(graph, id: id) {
                logger.warning("evaluated graph not stored", metadata: ["id": "\(id)", "reason": "\(reason)"])
            }
            return GraphRepresentation.response(for: graph, id: id, format: format, renderer: renderer)
        } catch {
            return .problem(error)
        }
    }

    /// `application/json` or any `+json` type, parameters (charset) ignored, ASCII case-insensitive.
    /// Over the UTF-8 bytes without making Strings: split + lowercased cost ~0.7 us, 10% of a small request.
    static func isJSON(_ contentType: String) -> Bool {
        var contentType = contentType
        return contentType.withUTF8 { bytes in
            var start = 0, end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            let mediaType = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if asciiEqualsIgnoringCase(mediaType, "application/json") { return true }
            let prefix = "application/".utf8.count, suffix = "+json".utf8.count
            return mediaType.count >= prefix + suffix
                && asciiEqualsIgnoringCase(UnsafeBufferPointer(rebasing: mediaType[..<prefix]), "application/")
                && asciiEqualsIgnoringCase(UnsafeBufferPointer(rebasing: mediaType[(mediaType.count - suffix)...]), "+json")
        }
    }

    /// `bytes` equals the lowercase ASCII `literal`, ignoring the case of ASCII letters in `bytes`.
    private static func asciiEqualsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        for k in 0..<bytes.count {
            let c = bytes[k]
            if (c >= 65 && c <= 90 ? c | 0x20 : c) != p[k] { return false }
        }
        return true
    }
}
