import HTTPServer
import Logging
import Micrograd
import MicrogradGraph
import Synchronization

/// `/graphs`: graphs registered once (content-addressed) and evaluated again, one value set or a batch.
///
///     POST   /graphs                  register (201 Created, or 200 when the same graph is already registered)
///     GET    /graphs/{gid}            the graph at its registered values (format negotiation as POST /evaluate)
///     DELETE /graphs/{gid}            204
///     POST   /graphs/{gid}/evaluate   new values: single (an evaluation, as POST /evaluate) or batch (columns)
///
/// The router matches exact paths, so `GraphService` hands every path under `/graphs` here; ``route(_:)`` says
/// which pattern matched, and metrics are labelled by that pattern, never by a gid.
struct RegisteredGraphRoutes: Sendable {
    let pipeline: EvaluationPipeline
    let store: any GraphStore
    let metrics: ServiceMetrics
    let logger: Logger
    /// Registered graphs' spec-only JSON, kept across their re-evaluations.
    let skeletons = SkeletonCache()

    var limits: GraphLimits { pipeline.limits }

    static let collection = "/graphs"
    static let item = "/graphs/{gid}"
    static let evaluate = "/graphs/{gid}/evaluate"
    /// Made once: every request of the service is checked against it (the concatenation cost ~100 instructions).
    private static let itemPrefix = collection + "/"

    /// The response and the route pattern for a path under `/graphs`; nil for any other path.
    func route(_ request: HTTPRequest) -> (response: HTTPResponse, pattern: String)? {
        let path = request.path
        if path.utf8.count == Self.collection.utf8.count, path == Self.collection {
            return (request.method == "POST" ? register(request) : methodNotAllowed(request, ["POST"]), Self.collection)
        }
        guard path.utf8.count > Self.itemPrefix.utf8.count, path.hasPrefix(Self.itemPrefix) else { return nil }
        let rest = path.dropFirst(Self.collection.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard let gid = rest.first, !gid.isEmpty else { return nil }
        if rest.count == 1 {
            switch request.method {
            case "GET", "HEAD": return (show(request, gid: String(gid)), Self.item)
            case "DELETE": return (delete(gid: String(gid)), Self.item)
            default: return (methodNotAllowed(request, ["DELETE", "GET", "HEAD"]), Self.item)
            }
        }
        if rest.count == 2, rest[1] == "evaluate" {
            return (request.method == "POST" ? evaluate(request, gid: String(gid)) : methodNotAllowed(request, ["POST"]),
                    Self.evaluate)
        }
        return nil
    }

    private func methodNotAllowed(_ request: HTTPRequest, _ allow: [String]) -> HTTPResponse {
        .problem(ServiceProblem.methodNotAllowed(method: request.method, path: request.path, allow: allow),
                 headers: [("Allow", allow.joined(separator: ", "))])
    }

    // MARK: POST /graphs

    func register(_ request: HTTPRequest) -> HTTPResponse {
        if request.header("Content-Type", satisfies: EvaluateRoute.isJSON) == false, let contentType = request.header("Content-Type") {
            return .problem(ServiceProblem.unsupportedMediaType(contentType))
        }
        do throws(ServiceProblem) {
            // Registration takes one value per input (the registered values): arrays are for evaluations.
            let batch: Bool
            do throws(Problem) { batch = try GraphCallDecoder.expressionBatch(request.body) != nil } catch { batch = true }
            if batch {
                throw ServiceProblem(.invalidValues(
                    "a registration gives each input one number, without \"gradients\" or \"reduce\": send batches to POST /graphs/{gid}/evaluate",
                    pointer: "/values"))
            }
            let spec: GraphSpec
            do throws(Problem) { spec = try GraphRequestDecoder.decode(request.body, limits: limits) } catch {
                throw ServiceProblem(error)
            }
            let gid = ContentKey.key(for: spec)
            let status: Int
            switch store.register(spec, key: gid) {
            case .created: status = 201
            case .alreadyExisted: status = 200
            case .notStored(.full), .notStored(.tooLarge):
                throw ServiceProblem(name: "insufficient-storage", title: "Insufficient storage", status: 507,
                                     detail: "The registry is full (graphs are kept until deleted): DELETE /graphs/{gid} to make room.")
            case .notStored(.unavailable(let reason)):
                throw ServiceProblem.storeUnavailable("The graph store cannot be reached: \(reason).")
            }
            let location = Self.collection + "/" + gid
            return HTTPResponse(status: status, headers: [("Content-Type", "application/json"), ("Location", location)],
                                body: Self.registrationBody(spec, gid: gid))
        } catch {
            return .problem(error)
        }
    }

    /// `{"graph": gid, "output": id, "inputs": [leaf ids that are not constants, in node order], "nodes": n}`.
    static func registrationBody(_ spec: GraphSpec, gid: String) -> [UInt8] {
        var text = "{\"graph\":\"\(gid)\",\"output\":" + jsonString(spec.ids[Int(spec.output)]) + ",\"inputs\":["
        var first = true
        for i in 0..<spec.count where spec.ops[i] == .leaf && !spec.isConstant[i] {
            if !first { text += "," }
            first = false
            text += jsonString(spec.ids[i])
        }
        text += "],\"nodes\":\(spec.count)}"
        return Array(text.utf8)
    }

    /// A JSON string literal (ids may hold quotes, backslashes, control characters).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    // MARK: GET, DELETE /graphs/{gid}

    private func lookUp(_ gid: String) -> Result<GraphSpec, ServiceProblem> {
        switch store.registered(key: gid) {
        case .found(let spec): return .success(spec)
        case .absent: return .failure(.notFound("No graph is registered as '\(gid)' (never registered, or deleted)."))
        case .unavailable(let reason): return .failure(.storeUnavailable("The graph store cannot be reached: \(reason)."))
        }
    }

    func show(_ request: HTTPRequest, gid: String) -> HTTPResponse {
        do throws(ServiceProblem) {
            let format = try GraphRepresentation.choose(request, default: .json).get()
            let spec = try lookUp(gid).get()
            if format == .svg, let problem = pipeline.svgLimitProblem(nodes: spec.count) { throw problem }
            return GraphRepresentation.response(for: GraphEvaluator.evaluate(spec), id: gid, format: format, pipeline: pipeline,
                                                skeleton: format == .json ? skeletons.skeleton(gid, spec) : nil)
        } catch {
            return .problem(error)
        }
    }

    func delete(gid: String) -> HTTPResponse {
        skeletons.remove(gid)
        switch store.deleteRegistered(key: gid) {
        case .deleted: return HTTPResponse(status: 204, headers: [], body: [])
        case .absent: return .problem(ServiceProblem.notFound("No graph is registered as '\(gid)' (never registered, or deleted)."))
        case .unavailable(let reason): return .problem(ServiceProblem.storeUnavailable("The graph store cannot be reached: \(reason)."))
        }
    }

    // MARK: POST /graphs/{gid}/evaluate

    func evaluate(_ request: HTTPRequest, gid: String) -> HTTPResponse {
        if request.header("Content-Type", satisfies: EvaluateRoute.isJSON) == false, let contentType = request.header("Content-Type") {
            return .problem(ServiceProblem.unsupportedMediaType(contentType))
        }
        do throws(ServiceProblem) {
            let format = try GraphRepresentation.choose(request, default: .json).get()
            let call: GraphCall
            do throws(Problem) { call = try GraphCallDecoder.decode(request.body) } catch { throw ServiceProblem(error) }
            let spec = try lookUp(gid).get()
            let bound = try Self.bind(call, to: spec)
            guard call.isBatch else {
                // Single: the registered graph with these values, answered and kept exactly as POST /evaluate.
                var changed = spec
                for (node, value) in bound.values { if case .number(let v) = value { changed.values[Int(node)] = v } }
                if format == .svg, let problem = pipeline.svgLimitProblem(nodes: spec.count) { throw problem }
                let graph = GraphEvaluator.evaluate(changed)
                metrics.recordGraph(nodes: spec.count)
                let skeleton = format == .json ? skeletons.skeleton(gid, spec) : nil
                return EvaluateRoute.storeAndAnswer(graph, store: store, format: format, pipeline: pipeline, logger: logger,
                                                    skeleton: skeleton)
            }
            guard format == .json else {
                throw ServiceProblem.notAcceptable("A batch is answered in JSON only (application/json).")
            }
            let body = try Self.batch(call, bound, spec: spec, graphID: gid, limits: limits)
            return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: body)
        } catch {
            return .problem(error)
        }
    }

    /// A call's leaf ids resolved to node indices.
    struct Bound {
        var values: [(node: Int32, value: GraphCall.Value)]
        var gradients: [Int32]
        var gradientIDs: [String]
    }

    /// Resolves ids (422 with a pointer for an unknown id, a node that is not a leaf, or a constant in `values`).
    /// One pass over the ids per request, through a table of the names asked for only.
    static func bind(_ call: GraphCall, to spec: GraphSpec) throws(ServiceProblem) -> Bound {
        var wanted: [String: Int32] = [:]
        for (name, _) in call.values { wanted[name] = -1 }
        for name in call.gradients ?? [] { wanted[name] = -1 }
        if !wanted.isEmpty {
            var left = wanted.count
            for i in 0..<spec.count where left > 0 {
                if let slot = wanted[spec.ids[i]], slot < 0 { wanted[spec.ids[i]] = Int32(i); left -= 1 }
            }
        }
        func unprocessable(_ detail: String, _ pointer: String) -> ServiceProblem {
            ServiceProblem(.invalidValues(detail, pointer: pointer))
        }
        var bound = Bound(values: [], gradients: [], gradientIDs: [])
        for (name, value) in call.values {
            let pointer = "/values/" + escape(name)
            guard let node = wanted[name], node >= 0 else { throw unprocessable("the graph has no node \"\(name)\"", pointer) }
            guard spec.ops[Int(node)] == .leaf else { throw unprocessable("\"\(name)\" is not a leaf: only leaves take values", pointer) }
            guard !spec.isConstant[Int(node)] else {
                throw unprocessable("\"\(name)\" is a constant of the graph (a number literal), not an input", pointer)
            }
            bound.values.append((node, value))
        }
        if let gradients = call.gradients {
            for (k, name) in gradients.enumerated() {
                guard let node = wanted[name], node >= 0, spec.ops[Int(node)] == .leaf else {
                    throw unprocessable("\"\(name)\" is not a leaf of the graph", "/gradients/\(k)")
                }
                bound.gradients.append(node)
                bound.gradientIDs.append(name)
            }
        } else {
            bound.gradients = bound.values.map(\.node)
            bound.gradientIDs = call.values.map(\.name)
        }
        return bound
    }

    static func escape(_ token: String) -> String {
        token.replacingOccurrences("~", "~0").replacingOccurrences("/", "~1")
    }

    /// Runs a batch (all arrays the same length, rows x nodes within the cap) and encodes its columns.
    static func batch(_ call: GraphCall, _ bound: Bound, spec: GraphSpec, graphID: String?, limits: GraphLimits)
        throws(ServiceProblem) -> [UInt8]
    {
        var rows = 0
        var inputs: [Int32: BatchColumn] = [:]
        for (k, entry) in bound.values.enumerated() {
            switch entry.value {
            case .number(let v): inputs[entry.node] = .shared(v)
            case .rows(let column):
                if rows == 0 {
                    rows = column.count
                } else if column.count != rows {
                    throw ServiceProblem(.invalidValues(
                        "\"\(call.values[k].name)\" has \(column.count) rows; the first array has \(rows)",
                        pointer: "/values/" + escape(call.values[k].name)))
                }
                inputs[entry.node] = .rows(column)
            }
        }
        // The work (rows x nodes) and the answer (rows x columns: a gradient may be asked for many times) are
        // both bounded, so no small request can ask for a huge computation or a huge answer.
        if rows == 0 { rows = 1 }  // no arrays (an expression batch asked for by "gradients" or "reduce"): one row
        let columns = 1 + bound.gradients.count
        let (cells, overflow) = rows.multipliedReportingOverflow(by: max(spec.count, columns))
        if overflow || cells > limits.maxBatchCells {
            throw ServiceProblem(.tooLarge(
                "\(rows) rows x \(max(spec.count, columns)) \(spec.count >= columns ? "nodes" : "answer columns") is over the limit of \(limits.maxBatchCells) per batch"))
        }
        let graph: CompiledGraph
        do {
            graph = try CompiledGraph(ops: spec.ops, lhs: spec.lhs, rhs: spec.rhs, values: spec.values, output: spec.output)
        } catch {
            // A decoded spec is always a valid graph; say so rather than trap if that ever breaks.
            throw ServiceProblem(name: "internal", title: "Internal error", status: 500,
                                 detail: "the stored graph is not in topological order (\(error))")
        }
        let result = graph.evaluateBatch(rows: rows, inputs: inputs, gradients: bound.gradients, reduction: call.reduction)
        return BatchEncoder.json(graphID: graphID, outputID: spec.ids[Int(spec.output)],
                                 gradientIDs: bound.gradientIDs, result: result)
    }
}

/// ``JSONSkeleton``s of registered graphs by gid. A gid names content, so a kept skeleton is never stale; a
/// deleted graph's is dropped (and a lookup in the store precedes every use). Bounded in bytes: when a new one
/// would not fit, the others are dropped (rebuilding one costs about one ordinary JSON answer).
final class SkeletonCache: Sendable {
    private let state = Mutex<(skeletons: [String: JSONSkeleton], bytes: Int)>(([:], 0))
    let maxBytes: Int

    init(maxBytes: Int = 64 << 20) {
        self.maxBytes = maxBytes
    }

    /// The skeleton of `spec`, registered as `gid`: the kept one, or made now (and kept if it fits).
    func skeleton(_ gid: String, _ spec: GraphSpec) -> JSONSkeleton {
        if let kept = state.withLock({ $0.skeletons[gid] }) { return kept }
        let made = GraphEncoder.jsonSkeleton(spec)  // outside the lock: other graphs' requests go on meanwhile
        guard made.byteCount <= maxBytes else { return made }
        state.withLock { state in
            if state.skeletons[gid] != nil { return }
            if state.bytes + made.byteCount > maxBytes { state = ([:], 0) }
            state.skeletons[gid] = made
            state.bytes += made.byteCount
        }
        return made
    }

    func remove(_ gid: String) {
        state.withLock { state in
            if let gone = state.skeletons.removeValue(forKey: gid) { state.bytes -= gone.byteCount }
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
