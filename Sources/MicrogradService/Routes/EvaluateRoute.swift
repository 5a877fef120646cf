import HTTPServer
import Logging
import MicrogradGraph

/// `POST /evaluate`: run the pipeline on the body, keep the result in the store, answer in the representation
/// asked for (`?format=` or `Accept`).
struct EvaluateRoute: Sendable {
    let pipeline: EvaluationPipeline
    let store: any GraphStore
    let metrics: ServiceMetrics
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
        let graph: EvaluatedGraph
        do throws(ServiceProblem) {
            // Arrays in an expression's values: a batch over a graph that is not registered.
            if let batch = try ExpressionBatch.answer(request.body, limits: pipeline.limits) {
                guard format == .json else { throw ServiceProblem.notAcceptable("A batch is answered in JSON only (application/json).") }
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: batch)
            }
            graph = try pipeline.evaluate(request.body, for: format)
        } catch {
            return .problem(error)
        }
        metrics.recordGraph(nodes: graph.spec.count)
        // The answer does not wait on the store: a graph too large to keep, or a store that is down, still
        // gets its evaluation (GET /graph.* with this id then answers 404 or 503).
        let id = store.newEvaluationID()
        if case .notStored(.unavailable(let reason)) = store.putEvaluation(graph, id: id) {
            logger.warning("evaluated graph not stored", metadata: ["id": "\(id)", "reason": "\(reason)"])
        }
        return GraphRepresentation.response(for: graph, id: id, format: format, pipeline: pipeline)
    }

    /// `application/json` or any `+json` type, parameters (charset) ignored, ASCII case-insensitive.
    /// Over the UTF-8 bytes without making Strings (this runs on every request).
    static func isJSON(_ contentType: String) -> Bool {
        var contentType = contentType
        return contentType.withUTF8 { bytes in
            var start = 0, end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            let mediaType = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if asciiCaseInsensitiveEqual(mediaType, "application/json") { return true }
            let prefix = "application/".utf8.count, suffix = "+json".utf8.count
            return mediaType.count >= prefix + suffix
                && asciiCaseInsensitiveEqual(UnsafeBufferPointer(rebasing: mediaType[..<prefix]), "application/")
                && asciiCaseInsensitiveEqual(UnsafeBufferPointer(rebasing: mediaType[(mediaType.count - suffix)...]), "+json")
        }
    }
}
