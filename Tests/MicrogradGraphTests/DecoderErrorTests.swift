import Testing
@testable import MicrogradGraph

/// Every error kind: its status, problem type and JSON pointer.
@Suite struct DecoderErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var body: String
        var status: Int
        var type: String
        var pointer: String?
        var maxNodes = 1_000_000
        var testDescription: String { name }
    }

    static let leafA = #"{"id":"a","value":1}"#

    static let cases: [Case] = [
        // 400 malformed JSON
        Case(name: "empty body", body: "", status: 400, type: "malformed-json", pointer: ""),
        Case(name: "trailing comma in array", body: #"{"nodes":[{"id":"a","value":1},]}"#, status: 400, type: "malformed-json", pointer: "/nodes/1"),
        Case(name: "trailing comma in object", body: #"{"nodes":[{"id":"a","value":1,}]}"#, status: 400, type: "malformed-json", pointer: "/nodes/0/value"),
        Case(name: "leading zero", body: #"{"nodes":[{"id":"a","value":01}]}"#, status: 400, type: "malformed-json", pointer: "/nodes/0/value"),
        Case(name: "unterminated", body: #"{"nodes":[{"id":"a","value":1}"#, status: 400, type: "malformed-json", pointer: "/nodes/0"),
        Case(name: "trailing content", body: #"{"nodes":[{"id":"a","value":1}]} x"#, status: 400, type: "malformed-json", pointer: ""),
        Case(name: "single quotes", body: #"{'nodes':[]}"#, status: 400, type: "malformed-json", pointer: ""),
        Case(name: "bad JSON under an unknown member, pointer escaped",
             body: #"{"nodes":[{"id":"a","value":1,"x/y~z":[1,}]}"#, status: 400, type: "malformed-json", pointer: "/nodes/0/x~1y~0z"),
        Case(name: "bad literal", body: #"{"nodes":[{"id":"a","value":1,"k":tru}]}"#, status: 400, type: "malformed-json", pointer: "/nodes/0/k"),
        Case(name: "syntax error wins over an earlier graph error",
             body: #"{"nodes":[{"id":"a","op":"nope","inputs":[]}], "x": [}"#, status: 400, type: "malformed-json", pointer: "/x"),
        // 400 invalid request (well-formed, wrong shape)
        Case(name: "not an object", body: "[1,2]", status: 400, type: "invalid-request", pointer: ""),
        Case(name: "neither nodes nor expression", body: #"{"output":"a"}"#, status: 400, type: "invalid-request", pointer: ""),
        Case(name: "both forms", body: #"{"nodes":[\#(leafA)],"expression":"a"}"#, status: 400, type: "invalid-request", pointer: "/expression"),
        Case(name: "nodes not an array", body: #"{"nodes":{}}"#, status: 400, type: "invalid-request", pointer: "/nodes"),
        Case(name: "node not an object", body: #"{"nodes":[\#(leafA),7]}"#, status: 400, type: "invalid-request", pointer: "/nodes/1"),
        Case(name: "missing id", body: #"{"nodes":[{"value":1}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0"),
        Case(name: "id not a string", body: #"{"nodes":[{"id":1,"value":1}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/id"),
        Case(name: "value not a number", body: #"{"nodes":[{"id":"a","value":"abc"}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/value"),
        Case(name: "label null", body: #"{"nodes":[{"id":"a","value":1,"label":null}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/label"),
        Case(name: "value null", body: #"{"nodes":[{"id":"a","value":null}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/value"),
        Case(name: "number out of range", body: #"{"nodes":[{"id":"a","value":1e400}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/value"),
        Case(name: "negative number out of range", body: #"{"nodes":[{"id":"a","value":-17976931348623159e292}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/value"),
        Case(name: "duplicate member in a node", body: #"{"nodes":[{"id":"a","id":"b","value":1}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/0/id"),
        Case(name: "duplicate top-level member", body: #"{"nodes":[\#(leafA)],"nodes":[]}"#, status: 400, type: "invalid-request", pointer: "/nodes"),
        Case(name: "inputs not an array", body: #"{"nodes":[\#(leafA),{"id":"b","op":"neg","inputs":"a"}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/1/inputs"),
        Case(name: "input neither id nor number", body: #"{"nodes":[\#(leafA),{"id":"b","op":"add","inputs":["a",null]}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/1/inputs/1"),
        Case(name: "op not a string", body: #"{"nodes":[\#(leafA),{"id":"b","op":3,"inputs":["a"]}]}"#, status: 400, type: "invalid-request", pointer: "/nodes/1/op"),
        Case(name: "output not a string", body: #"{"nodes":[\#(leafA)],"output":1}"#, status: 400, type: "invalid-request", pointer: "/output"),
        Case(name: "values with the graph form", body: #"{"nodes":[\#(leafA)],"values":{}}"#, status: 400, type: "invalid-request", pointer: "/values"),
        Case(name: "values member not a number", body: #"{"expression":"x","values":{"x":"abc"}}"#, status: 400, type: "invalid-request", pointer: "/values/x"),
        Case(name: "duplicate variable", body: #"{"expression":"x","values":{"x":1,"x":2}}"#, status: 400, type: "invalid-request", pointer: "/values/x"),
        // 422 invalid graph
        Case(name: "unknown op", body: #"{"nodes":[\#(leafA),{"id":"b","op":"cosh","inputs":["a"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/op"),
        Case(name: "arity", body: #"{"nodes":[\#(leafA),{"id":"b","op":"mul","inputs":["a"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs"),
        Case(name: "arity without inputs", body: #"{"nodes":[\#(leafA),{"id":"b","op":"tanh"}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1"),
        Case(name: "unary op with two inputs", body: #"{"nodes":[\#(leafA),{"id":"b","op":"relu","inputs":["a","a"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs"),
        Case(name: "pow with exponent and two inputs", body: #"{"nodes":[\#(leafA),{"id":"b","op":"pow","inputs":["a","a"],"exponent":2}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs"),
        Case(name: "pow with one input and no exponent", body: #"{"nodes":[\#(leafA),{"id":"b","op":"pow","inputs":["a"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs"),
        Case(name: "exponent on another op", body: #"{"nodes":[\#(leafA),{"id":"b","op":"exp","inputs":["a"],"exponent":2}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/exponent"),
        Case(name: "op node with a value", body: #"{"nodes":[\#(leafA),{"id":"b","op":"exp","inputs":["a"],"value":2}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/value"),
        Case(name: "leaf with inputs", body: #"{"nodes":[\#(leafA),{"id":"b","value":2,"inputs":["a"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs"),
        Case(name: "missing value", body: #"{"nodes":[{"id":"a"}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/0"),
        Case(name: "unknown id", body: #"{"nodes":[\#(leafA),{"id":"b","op":"add","inputs":["a","zz"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs/1"),
        Case(name: "unknown id, first reference reported", body: #"{"nodes":[{"id":"b","op":"add","inputs":["q","r"]},{"id":"c","op":"neg","inputs":["r"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/0/inputs/0"),
        Case(name: "duplicate id", body: #"{"nodes":[\#(leafA),{"id":"a","value":2}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/id"),
        Case(name: "unknown output", body: #"{"nodes":[\#(leafA)],"output":"b"}"#, status: 422, type: "invalid-graph", pointer: "/output"),
        Case(name: "no nodes", body: #"{"nodes":[]}"#, status: 422, type: "invalid-graph", pointer: "/nodes"),
        Case(name: "self-loop", body: #"{"nodes":[\#(leafA),{"id":"b","op":"add","inputs":["a","b"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs/1"),
        Case(name: "two-node cycle", body: #"{"nodes":[{"id":"x","op":"neg","inputs":["y"]},{"id":"y","op":"exp","inputs":["x"]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs/0"),
        Case(name: "node cap", body: #"{"nodes":[\#(leafA),{"id":"b","value":1},{"id":"c","value":1}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/2", maxNodes: 2),
        Case(name: "node cap counts constants", body: #"{"nodes":[\#(leafA),{"id":"b","op":"add","inputs":["a",1]}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/1/inputs/1", maxNodes: 2),
        Case(name: "empty id", body: #"{"nodes":[{"id":"","value":1}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/0/id"),
        Case(name: "id too long", body: #"{"nodes":[{"id":"\#(String(repeating: "x", count: 1025))","value":1}]}"#, status: 422, type: "invalid-graph", pointer: "/nodes/0/id"),
        // 413
        Case(name: "expression too long", body: #"{"expression":"\#(String(repeating: "x", count: (1 << 20) + 1))"}"#, status: 413, type: "too-large", pointer: "/expression"),
    ]

    @Test(arguments: cases)
    func problem(_ c: Case) throws {
        let p = try #require(decodeProblem(c.body, limits: GraphLimits(maxNodes: c.maxNodes)))
        #expect(p.kind.rawValue == c.type, "\(p.detail)")
        #expect(p.pointer == c.pointer, "\(p.detail)")
        #expect(!p.detail.isEmpty)
    }

    @Test func expressionErrorsCarryAColumn() throws {
        let p = try #require(decodeProblem(#"{"expression":"x +","values":{"x":1}}"#))
        #expect([.invalidGraph, .invalidExpression].contains(p.kind))
        #expect(p.kind.rawValue == "invalid-expression")
        #expect(p.column != nil)
    }

    @Test func cycleDetailNamesTheCycle() throws {
        let p = try #require(decodeProblem(#"{"nodes":[{"id":"x","op":"neg","inputs":["y"]},{"id":"y","op":"exp","inputs":["x"]}]}"#))
        #expect(p.detail.contains(#""x" -> "y" -> "x""#) || p.detail.contains(#""y" -> "x" -> "y""#), "\(p.detail)")
    }

    @Test func longCycleIsFoundWithoutRecursion() throws {
        // n_i takes n_{i+1}; the last takes n_0: a 100,000-node cycle.
        let n = 100_000
        var s = "{\"nodes\":["
        for i in 0..<n { s += "{\"id\":\"n\(i)\",\"op\":\"neg\",\"inputs\":[\"n\((i + 1) % n)\"]}," }
        s += "{\"id\":\"leaf\",\"value\":1}]}"
        let p = try #require(decodeProblem(s))
        #expect([.invalidGraph, .invalidExpression].contains(p.kind))
        #expect(p.pointer == "/nodes/\(n - 1)/inputs/0")
        #expect(p.detail.contains("100000 nodes"), "\(p.detail)")
    }

    @Test func nodeCapHoldsAtTheDefaultLimit() throws {
        let limits = GraphLimits(maxNodes: 1000)
        var s = "{\"nodes\":[{\"id\":\"x\",\"value\":1}"
        for i in 0..<999 { s += ",{\"id\":\"n\(i)\",\"value\":1}" }
        #expect(decodeProblem(s + "]}", limits: limits) == nil)
        let p = try #require(decodeProblem(s + ",{\"id\":\"one-more\",\"value\":1}]}", limits: limits))
        #expect([.invalidGraph, .invalidExpression].contains(p.kind) && p.pointer == "/nodes/1000")
    }
}
