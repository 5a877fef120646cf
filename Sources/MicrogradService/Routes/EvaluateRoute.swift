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
        // Checked over the field's bytes: the String is made only for the refusal.
        if request.header("Content-Type", satisfies: Self.isJSON) == false, let contentType = request.header("Content-Type") {
            return .problem(.unsupportedMediaType(contentType))
        }
        let format: GraphFormat
        switch GraphRepresentation.choose(request, default: .json) {
        case .success(let chosen): format = chosen
        case .failure(let problem): return .problem(problem)
        }
        let graph: EvaluatedGraph
        do throws(ServiceProblem) {
            graph = try pipeline.evaluate(request.body, for: format)
        } catch {
            // Arrays, "gradients" or "reduce" in an expression's request make it a batch over a graph that is not
            // registered. The single-graph decoder refuses those, so only a refused request is read again as a
            // batch: every other request is parsed once.
            do throws(ServiceProblem) {
                if let batch = try ExpressionBatch.answer(request.body, limits: pipeline.limits) {
                    guard format == .json else { throw ServiceProblem.notAcceptable("A batch is answered in JSON only (application/json).") }
                    return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: batch)
                }
            } catch let batchProblem {
                return .problem(batchProblem)
            }
            return .problem(error)
        }
        metrics.recordGraph(nodes: graph.spec.count)
        return Self.storeAndAnswer(consume graph, store: store, format: format, pipeline: pipeline, logger: logger)
    }

    /// Keeps an evaluated graph and answers it: POST /evaluate and a single POST /graphs/{gid}/evaluate alike.
    /// The answer carries the graph's id only once the store has it (a shared store: once Redis acknowledged it).
    /// A graph too large to keep, or a store that is down or does not answer in time, still gets its evaluation,
    /// without an id (no replica could find it) and with a header naming why. A store that writes later makes
    /// the answer deferred: the worker thread serves other connections meanwhile.
    /// `skeleton`: see ``EvaluationPipeline/represent(_:id:as:skeleton:)``.
    static func storeAndAnswer(
        _ graph: consuming EvaluatedGraph, store: any GraphStore, format: GraphFormat, pipeline: EvaluationPipeline,
        logger: Logger, skeleton: JSONSkeleton? = nil
    ) -> HTTPResponse {
        let id = store.newEvaluationID()
        guard store.writesLater else {
            // Moved into the store: a copy was a retain of each of the graph's arrays, and a release once answered.
            return store.putEvaluation(consuming: graph, id: id) { graph, write in
                answer(graph, id: id, write: write, format: format, pipeline: pipeline, logger: logger, skeleton: skeleton)
            }
        }
        let pending = PendingAnswer(
            graph: graph, id: id, format: format, pipeline: pipeline, logger: logger, skeleton: skeleton)
        let later = DeferredResponse(timeout: storeWriteTimeout) {
            pending.answer(.notStored(.unavailable(reason: "the store did not answer in time")))
        }
        store.putEvaluation(pending.graph, id: id) { write in
            later.complete { pending.answer(write) }  // built on the worker thread that sends it
        }
        return .deferred(later)
    }

    /// What a deferred evaluation's answer is made of, shared by its closures: captured by value, the graph's nine
    /// arrays were retained and released again for each closure, on different threads.
    private final class PendingAnswer: Sendable {
        let graph: EvaluatedGraph
        let id: String
        let format: GraphFormat
        let pipeline: EvaluationPipeline
        let logger: Logger
        let skeleton: JSONSkeleton?

        init(graph: EvaluatedGraph, id: String, format: GraphFormat, pipeline: EvaluationPipeline, logger: Logger,
             skeleton: JSONSkeleton?) {
            self.graph = graph
            self.id = id
            self.format = format
            self.pipeline = pipeline
            self.logger = logger
            self.skeleton = skeleton
        }

        func answer(_ write: StoreWrite) -> HTTPResponse {
            EvaluateRoute.answer(graph, id: id, write: write, format: format, pipeline: pipeline, logger: logger,
                                 skeleton: skeleton)
        }
    }

    /// How long an evaluation's answer waits for a store that writes later. A safety net: the Redis store fails a
    /// write on its own after its connect and command timeouts (250 ms and 500 ms by default).
    static let storeWriteTimeout = Duration.seconds(10)

    fileprivate static func answer(
        _ graph: EvaluatedGraph, id: String, write: StoreWrite, format: GraphFormat, pipeline: EvaluationPipeline,
        logger: Logger, skeleton: JSONSkeleton?
    ) -> HTTPResponse {
        switch write {
        case .stored:
            return GraphRepresentation.response(for: graph, id: id, format: format, pipeline: pipeline, skeleton: skeleton)
        case .notStored(let reason):
            if case .unavailable(let why) = reason {
                logger.warning("evaluated graph not stored", metadata: ["reason": "\(why)"])
            }
            var response = GraphRepresentation.response(
                for: graph, id: nil, format: format, pipeline: pipeline, skeleton: skeleton)
            if response.status == 200 { response.headers.append((notStoredHeader, name(of: reason))) }
            return response
        }
    }

    /// Names why an answered evaluation has no id (documented in openapi.yaml).
    static let notStoredHeader = "Graph-Not-Stored"

    static func name(of reason: NotStoredReason) -> String {
        switch reason {
        case .tooLarge: "too-large"
        case .full: "store-full"
        case .unavailable: "store-unavailable"
        }
    }

    /// `application/json` or any `+json` type, parameters (charset) ignored, ASCII case-insensitive.
    /// Over the UTF-8 bytes without making Strings (this runs on every request).
    static func isJSON(_ contentType: String) -> Bool {
        var contentType = contentType
        return contentType.withUTF8(isJSON)
    }

    static func isJSON(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
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
