import Foundation
import Micrograd
import Testing
@testable import MicrogradGraph

/// issue 4's example request.
let seedRequest = """
    {"nodes": [
       {"id": "a", "value": 2.0, "label": "a"},
       {"id": "b", "value": -3.0},
       {"id": "c", "value": 10.0},
       {"id": "e", "op": "mul", "inputs": ["a", "b"]},
       {"id": "d", "op": "add", "inputs": ["e", "c"]},
       {"id": "p", "op": "pow", "inputs": ["d"], "exponent": 2}],
     "output": "d"}
    """

func decode(_ body: String, limits: GraphLimits = GraphLimits()) throws(Problem) -> GraphSpec {
    try GraphRequestDecoder.decode(Array(body.utf8), limits: limits)
}

func decodeProblem(_ body: [UInt8], limits: GraphLimits = GraphLimits()) -> Problem? {
    do {
        _ = try GraphRequestDecoder.decode(body, limits: limits)
        return nil
    } catch {
        return error
    }
}

func decodeProblem(_ body: String, limits: GraphLimits = GraphLimits()) -> Problem? {
    decodeProblem(Array(body.utf8), limits: limits)
}

func evaluate(_ body: String) throws(Problem) -> EvaluatedGraph {
    GraphEvaluator.evaluate(try decode(body), on: Tape())
}

/// Node index by id in a decoded spec.
func index(_ spec: GraphSpec, _ id: String) -> Int {
    spec.ids.firstIndex(of: id)!
}

/// Parses an encoder's output with Foundation (only to inspect shape in tests; never for numbers that matter).
func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

/// A chain `x = x*w_i + b_i`, 4 nodes per step (issue 5's large request), as JSON text.
func chainRequest(steps: Int) -> [UInt8] {
    var s = "{\"nodes\":[{\"id\":\"x0\",\"value\":0.5}"
    s.reserveCapacity(steps * 160)
    for i in 1...steps {
        s += ",{\"id\":\"w\(i)\",\"value\":0.999},{\"id\":\"b\(i)\",\"value\":0.001}"
        s += ",{\"id\":\"m\(i)\",\"op\":\"mul\",\"inputs\":[\"x\(i - 1)\",\"w\(i)\"]}"
        s += ",{\"id\":\"x\(i)\",\"op\":\"add\",\"inputs\":[\"m\(i)\",\"b\(i)\"]}"
    }
    s += "]}"
    return Array(s.utf8)
}

