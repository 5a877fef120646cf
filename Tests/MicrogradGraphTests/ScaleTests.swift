import Foundation
import Micrograd
import Testing
@testable import MicrogradGraph

/// Large and deep graphs: nothing may recurse over depth (a 1,000,000-node chain is 250,000 steps deep).
@Suite struct ScaleTests {
    @Test func millionNodeChainDecodesEvaluatesAndEncodes() throws {
        let steps = 249_999  // 999,997 nodes, just under the default cap
        let body = chainRequest(steps: steps)
        let spec = try GraphRequestDecoder.decode(body, limits: GraphLimits())
        #expect(spec.count == 4 * steps + 1)
        #expect(spec.ids[Int(spec.output)] == "x\(steps)")
        let g = GraphEvaluator.evaluate(spec, on: Tape(capacity: spec.count))
        // x_i = 0.999 x_{i-1} + 0.001 converges to 1 from 0.5; d x_n / d x_0 = 0.999^n.
        #expect(abs(g.outputValue - 1) < 1e-9)
        // 0.999^249,999 = 2.36e-109, a normal double: compare relatively (the product rounds once per step).
        let expectedGrad = Foundation.pow(0.999, Double(steps))
        #expect(expectedGrad > 1e-110 && abs(g.grad[0] - expectedGrad) <= 1e-9 * expectedGrad, "\(g.grad[0])")
        #expect(g.grad[spec.count - 1] == 1)
        let json = GraphEncoder.json(g, graphID: "big")
        #expect(json.count > body.count)
        #expect(json.suffix(2) == [UInt8(ascii: "]"), UInt8(ascii: "}")])
        // One record per node, one op node per computed node, the output highlighted with its exact numbers.
        let dot = String(decoding: GraphEncoder.dot(g), as: UTF8.self)
        #expect(dot.hasPrefix("digraph micrograd {\n") && dot.hasSuffix("}\n"))
        #expect(dot.components(separatedBy: " [label=\"{ ").count - 1 == spec.count)
        #expect(dot.components(separatedBy: " [shape=ellipse").count - 1 == spec.ops.filter { $0 != .leaf }.count)
        #expect(dot.contains("  n\(spec.count - 1) [label=\"{ x\(steps) | data 1.0000 | grad 1.0000 }\", style=filled"))
        #expect(GraphEncoder.jgf(g, graphID: "big").count > 0)
    }

    @Test func millionNodeChainListedBackwardsSortsIteratively() throws {
        // Users before inputs: the sort has to walk the whole 1,000,000-deep dependency chain from node 0.
        let n = 1_000_000
        var s = "{\"nodes\":["
        s.reserveCapacity(n * 48)
        for i in stride(from: n - 1, through: 1, by: -1) { s += "{\"id\":\"n\(i)\",\"op\":\"neg\",\"inputs\":[\"n\(i - 1)\"]}," }
        s += "{\"id\":\"n0\",\"value\":1}],\"output\":\"n\(n - 1)\"}"
        let spec = try decode(s)
        #expect(spec.count == n)
        #expect(spec.ids.first == "n0" && spec.ids.last == "n\(n - 1)")
        let g = GraphEvaluator.evaluate(spec, on: Tape(capacity: n))
        #expect(g.outputValue == -1)  // 999,999 negations
        #expect(g.grad[0] == -1)
    }
}
