/// An RFC 9457 problem: what went wrong with a request, and where.
///
/// `type` is a URI naming the kind of problem (stable, documented in openapi.yaml);
/// `pointer` is an RFC 6901 JSON pointer into the request body, `column` a 1-based
/// column into an expression.
public struct Problem: Error, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var pointer: String?
    public var column: Int?

    public init(type: String, title: String, status: Int, detail: String, pointer: String? = nil, column: Int? = nil) {
        self.type = type; self.title = title; self.status = status; self.detail = detail
        self.pointer = pointer; self.column = column
    }

    /// Problem type URIs are relative references, resolved against the service (`/problems/<name>`).
    public static func typeURI(_ name: String) -> String { "/problems/" + name }

    /// 400: the body is not well-formed JSON (or not UTF-8).
    public static func malformedJSON(_ detail: String, pointer: String? = nil) -> Problem {
        Problem(type: typeURI("malformed-json"), title: "Malformed JSON", status: 400, detail: detail, pointer: pointer)
    }

    /// 400: well-formed JSON whose shape is wrong (a field of the wrong type, a missing field).
    public static func invalidRequest(_ detail: String, pointer: String?) -> Problem {
        Problem(type: typeURI("invalid-request"), title: "Invalid request", status: 400, detail: detail, pointer: pointer)
    }

    /// 422: a graph that cannot be evaluated (unknown op, arity, unknown/duplicate id, cycle, node cap...).
    public static func invalidGraph(_ detail: String, pointer: String?) -> Problem {
        Problem(type: typeURI("invalid-graph"), title: "Invalid graph", status: 422, detail: detail, pointer: pointer)
    }

    /// 422: an expression that does not parse or names an unbound variable.
    public static func invalidExpression(_ detail: String, column: Int?, pointer: String? = "/expression") -> Problem {
        Problem(type: typeURI("invalid-expression"), title: "Invalid expression", status: 422, detail: detail,
                pointer: pointer, column: column)
    }

    /// 413: over a size limit (body bytes, node count).
    public static func tooLarge(_ detail: String, pointer: String? = nil) -> Problem {
        Problem(type: typeURI("too-large"), title: "Request too large", status: 413, detail: detail, pointer: pointer)
    }
}
