import MicrogradGraph

/// A batch over a graph that is not registered: `POST /evaluate` (and `micrograd eval`) in the expression form
/// with arrays in `values`, plus `gradients` and `reduce` as in `POST /graphs/{gid}/evaluate`. The answer is
/// that route's batch answer without `"graph"`.
public enum ExpressionBatch {
    /// The batch answer (JSON), or nil when `body` is not an expression-form batch (then it is an ordinary request).
    public static func answer(_ body: [UInt8], limits: GraphLimits) throws(ServiceProblem) -> [UInt8]? {
        let found: (expression: String, call: GraphCall)?
        do throws(Problem) { found = try GraphCallDecoder.expressionBatch(body) } catch { throw ServiceProblem(error) }
        guard let (expression, call) = found else { return nil }
        // The graph is built with each variable's first row; the batch then gives every row its own.
        let firstRow: [(name: String, value: Double)] = call.values.map { entry in
            switch entry.value {
            case .number(let v): (entry.name, v)
            case .rows(let rows): (entry.name, rows[0])
            }
        }
        let spec: GraphSpec
        do throws(Problem) { spec = try ExpressionCompiler.compile(expression, values: firstRow, limits: limits) } catch {
            throw ServiceProblem(error)
        }
        let bound = try RegisteredGraphRoutes.bind(call, to: spec)
        return try RegisteredGraphRoutes.batch(call, bound, spec: spec, graphID: nil, limits: limits)
    }
}
