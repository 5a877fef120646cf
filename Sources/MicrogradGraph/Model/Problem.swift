/// What is wrong with a request, and where: the graph layer's error. It says nothing of HTTP; the service maps
/// each ``Kind`` to a status and a problem type URI, the CLI prints it as a line of text.
///
/// `pointer` is an RFC 6901 JSON pointer into the request body; `line` (multi-line expressions only) and
/// `column`, both 1-based, a place in an expression; `unbound` every name an expression uses without a value.
public struct Problem: Error, Sendable, Equatable {
    /// The kinds of problem. The raw value is the kind's stable name (the service's `/problems/<name>`).
    public enum Kind: String, Sendable, CaseIterable {
        /// The body is not well-formed JSON (or not UTF-8).
        case malformedJSON = "malformed-json"
        /// Well-formed JSON whose shape is wrong (a field of the wrong type, a missing field).
        case invalidRequest = "invalid-request"
        /// A graph that cannot be evaluated (unknown op, arity, unknown/duplicate id, cycle, node cap...).
        case invalidGraph = "invalid-graph"
        /// An expression that does not parse or names an unbound variable.
        case invalidExpression = "invalid-expression"
        /// Over a size limit (body bytes, expression bytes).
        case tooLarge = "too-large"
        /// New values for a graph that do not fit it: an id that is not an input leaf, arrays of different
        /// lengths, an empty array, an unknown `reduce`.
        case invalidValues = "invalid-values"

        /// A short human name of the kind (RFC 9457 `title`).
        public var title: String {
            switch self {
            case .malformedJSON: "Malformed JSON"
            case .invalidRequest: "Invalid request"
            case .invalidGraph: "Invalid graph"
            case .invalidExpression: "Invalid expression"
            case .tooLarge: "Request too large"
            case .invalidValues: "Invalid values"
            }
        }
    }

    public var kind: Kind
    public var detail: String
    public var pointer: String?
    public var column: Int?
    public var line: Int?
    public var unbound: [String]?

    public init(
        _ kind: Kind, _ detail: String, pointer: String? = nil, column: Int? = nil, line: Int? = nil,
        unbound: [String]? = nil
    ) {
        self.kind = kind; self.detail = detail; self.pointer = pointer; self.column = column
        self.line = line; self.unbound = unbound
    }

    public static func malformedJSON(_ detail: String, pointer: String? = nil) -> Problem {
        Problem(.malformedJSON, detail, pointer: pointer)
    }

    public static func invalidRequest(_ detail: String, pointer: String?) -> Problem {
        Problem(.invalidRequest, detail, pointer: pointer)
    }

    public static func invalidGraph(_ detail: String, pointer: String?, column: Int? = nil) -> Problem {
        Problem(.invalidGraph, detail, pointer: pointer, column: column)
    }

    public static func invalidExpression(
        _ detail: String, column: Int?, line: Int? = nil, pointer: String? = "/expression"
    ) -> Problem {
        Problem(.invalidExpression, detail, pointer: pointer, column: column, line: line)
    }

    public static func invalidValues(_ detail: String, pointer: String?) -> Problem {
        Problem(.invalidValues, detail, pointer: pointer)
    }

    public static func tooLarge(_ detail: String, pointer: String? = nil) -> Problem {
        Problem(.tooLarge, detail, pointer: pointer)
    }
}
