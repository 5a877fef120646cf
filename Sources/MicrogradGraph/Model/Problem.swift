/// An RFC 9457 problem: what went wrong with a request, and where.
///
/// `type` is a URI naming the kind of problem (stable, documented in openapi.yaml);
/// `pointer` is an RFC 6901 JSON pointer into the request body; `line` (multi-line expressions only) and
/// `column`, both 1-based, a place in an expression; `unbound` every name an expression uses without a value.
public struct Problem: Error, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var pointer: String?
    public var column: Int?
    public var line: Int?
    public var unbound: [String]?

    public init(
        type: String, title: String, status: Int, detail: String, pointer: String? = nil, column: Int? = nil,
        line: Int? = nil, unbound: [String]? = nil
    ) {
        self.type = type; self.title = title; self.status = status; self.detail = detail
        self.pointer = pointer; self.column = column; self.line = line; self.unbound = unbound
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
    public static func invalidExpression(
        _ detail: String, column: Int?, line: Int? = nil, pointer: String? = "/expression"
    ) -> Problem {
        Problem(type: typeURI("invalid-expression"), title: "Invalid expression", status: 422, detail: detail,
                pointer: pointer, column: column, line: line)
    }

    /// 413: over a size limit (body bytes, node count).
    public static func tooLarge(_ detail: String, pointer: String? = nil) -> Problem {
        Problem(type: typeURI("too-large"), title: "Request too large", status: 413, detail: detail, pointer: pointer)
    }
}
