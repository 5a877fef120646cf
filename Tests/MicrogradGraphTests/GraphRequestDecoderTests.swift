import Micrograd
import Testing
@testable import MicrogradGraph

@Suite struct GraphRequestDecoderTests {
    @Test func seedRequestDecodesInOrder() throws {
        let spec = try decode(seedRequest)
        #expect(spec.ids == ["a", "b", "c", "e", "d", "p"])
        #expect(spec.ops == [.leaf, .leaf, .leaf, .mul, .add, .powConst])
        #expect(spec.labels == ["a", nil, nil, nil, nil, nil])
        #expect(spec.lhs == [-1, -1, -1, 0, 3, 4])
        #expect(spec.rhs == [-1, -1, -1, 1, 2, -1])
        #expect(spec.values == [2, -3, 10, 0, 0, 2])
        #expect(spec.isConstant == [false, false, false, false, false, false])
        #expect(spec.output == 4)
    }

    @Test func nodesInAnyOrderAreSortedDeterministically() throws {
        let body = """
            {"nodes":[{"id":"d","op":"add","inputs":["e","c"]},{"id":"e","op":"*","inputs":["a","b"]},
                      {"id":"c","value":10},{"id":"b","value":-3},{"id":"a","value":2}]}
            """
        let spec = try decode(body)
        // DFS post-order from d: e's inputs a, b first, then e, then c, then d.
        #expect(spec.ids == ["a", "b", "e", "c", "d"])
        #expect(spec.ids[Int(spec.output)] == "a")  // output defaults to the last node listed
    }

    @Test func outputDefaultsToTheLastNodeListed() throws {
        let spec = try decode(#"{"nodes":[{"id":"y","op":"neg","inputs":["x"]},{"id":"x","value":3}]}"#)
        #expect(spec.ids == ["x", "y"])
        #expect(spec.ids[Int(spec.output)] == "x")
        let explicit = try decode(#"{"output":"y","nodes":[{"id":"y","op":"neg","inputs":["x"]},{"id":"x","value":3}]}"#)
        #expect(explicit.ids[Int(explicit.output)] == "y")
    }

    @Test func aliasesAndOps() throws {
        let body = """
            {"nodes":[{"id":"a","value":2},{"id":"b","value":3},
              {"id":"s","op":"+","inputs":["a","b"]},{"id":"t","op":"-","inputs":["a","b"]},{"id":"u","op":"-","inputs":["a"]},
              {"id":"v","op":"*","inputs":["a","b"]},{"id":"w","op":"/","inputs":["a","b"]},{"id":"x","op":"**","inputs":["a","b"]},
              {"id":"y","op":"**","inputs":["a"],"exponent":-0.5},{"id":"z","op":"sigmoid","inputs":["a"]},
              {"id":"e","op":"exp","inputs":["a"]},{"id":"l","op":"log","inputs":["a"]},{"id":"h","op":"tanh","inputs":["a"]},
              {"id":"r","op":"relu","inputs":["a"]},{"id":"n","op":"neg","inputs":["a"]},{"id":"q","op":"sub","inputs":["a","b"]}]}
            """
        let spec = try decode(body)
        #expect(spec.ops == [.leaf, .leaf, .add, .sub, .neg, .mul, .div, .pow, .powConst, .sigmoid, .exp, .log, .tanh, .relu, .neg, .sub])
        #expect(spec.values[index(spec, "y")] == -0.5)
    }

    @Test func numberInputsBecomeConstantLeavesWithGeneratedIDs() throws {
        let body = ##"{"nodes":[{"id":"x","value":3},{"id":"#1","value":1},{"id":"y","op":"mul","inputs":[2,"x"]},{"id":"z","op":"add","inputs":["y",-0.5]}]}"##
        let spec = try decode(body)
        // "#1" is taken by a request id, so the first constant becomes "#1#".
        #expect(spec.ids == ["x", "#1", "#1#", "y", "#2", "z"])
        #expect(spec.isConstant == [false, false, true, false, true, false])
        #expect(spec.values[2] == 2)
        #expect(spec.values[4] == -0.5)
        #expect(spec.lhs[3] == 2 && spec.rhs[3] == 0)
        #expect(Set(spec.ids).count == spec.ids.count)
    }

    @Test func nonFiniteStringsAreValues() throws {
        let spec = try decode(#"{"nodes":[{"id":"a","value":"NaN"},{"id":"b","value":"Infinity"},{"id":"c","value":"-Infinity"},{"id":"d","value":-0}]}"#)
        #expect(spec.values[0].isNaN)
        #expect(spec.values[1] == .infinity)
        #expect(spec.values[2] == -.infinity)
        #expect(spec.values[3] == 0 && spec.values[3].sign == .minus)
    }

    @Test func unknownMembersAreRefusedWithTheirPointer() throws {
        // A misspelt member must not be ignored: {"ouput": "a"} would otherwise differentiate the last node.
        let topLevel = try #require(decodeProblem(#"{"nodes":[{"id":"a","value":1}],"ouput":"a"}"#))
        #expect([.malformedJSON, .invalidRequest].contains(topLevel.kind) && topLevel.kind.rawValue == "invalid-request" && topLevel.pointer == "/ouput")
        let inNode = try #require(decodeProblem(#"{"nodes":[{"id":"a","value":1,"grad":[true,false]}]}"#))
        #expect([.malformedJSON, .invalidRequest].contains(inNode.kind) && inNode.pointer == "/nodes/0/grad")
        #expect(inNode.detail.contains("Unknown member \"grad\""))
    }

    @Test func idsAndLabelsAreLimitedInCharactersLikeTheSchemasMaxLength() throws {
        // openapi.yaml says maxLength 256; JSON Schema counts characters, so 256 two-byte characters are fine.
        let longest = String(repeating: "é", count: 256)
        let spec = try decode(#"{"nodes":[{"id":"\#(longest)","label":"\#(longest)","value":1}]}"#)
        #expect(spec.ids == [longest] && spec.labels == [longest])
        let id = try #require(decodeProblem(#"{"nodes":[{"id":"\#(longest)é","value":1}]}"#))
        #expect([.invalidGraph, .invalidExpression].contains(id.kind) && id.pointer == "/nodes/0/id" && id.detail.contains("257 characters"))
        let label = try #require(decodeProblem(#"{"nodes":[{"id":"a","label":"\#(String(repeating: "x", count: 257))","value":1}]}"#))
        #expect([.invalidGraph, .invalidExpression].contains(label.kind) && label.pointer == "/nodes/0/label")
    }

    @Test func escapedIDsResolveToTheSameNode() throws {
        // "\u00e9" and the raw UTF-8 "é" are the same id; so are a surrogate pair and the raw 4-byte form.
        let body = #"{"nodes":[{"id":"\u00e9","value":1},{"id":"\ud834\udd1e","value":2},{"id":"s","op":"add","inputs":["é","𝄞"]}]}"#
        let spec = try decode(body)
        #expect(spec.ids == ["é", "𝄞", "s"])
        #expect(spec.lhs[2] == 0 && spec.rhs[2] == 1)
    }

    @Test func aReusedNodeIsOneNode() throws {
        let spec = try decode(#"{"nodes":[{"id":"a","value":3},{"id":"b","op":"add","inputs":["a","a"]}]}"#)
        #expect(spec.count == 2)
        #expect(spec.lhs[1] == 0 && spec.rhs[1] == 0)
    }

    @Test func expressionForm() throws {
        let body = #"{"expression": "tanh(x1*w1 + x2*w2 + b)", "values": {"x1": 2, "w1": -3, "x2": 0, "w2": 1, "b": 6.881373587019543}}"#
        let spec = try decode(body)
        #expect(spec.ids.contains("x1") && spec.ids.contains("b"))
        #expect(spec.ops[Int(spec.output)] == .tanh)
        let g = GraphEvaluator.evaluate(spec, on: Tape())
        #expect(abs(g.outputValue - 0.7071067811865476) < 1e-12)
        #expect(abs(g.grad[index(spec, "x1")] - -1.5) < 1e-9)
        #expect(abs(g.grad[index(spec, "w1")] - 1.0) < 1e-9)
        #expect(abs(g.grad[index(spec, "x2")] - 0.5) < 1e-9)
        #expect(g.grad[index(spec, "w2")] == 0)
    }

    @Test func alreadySortedRequestsKeepTheirOrder() throws {
        var rng = SplitMix64(seed: 7)
        var s = "{\"nodes\":[{\"id\":\"n0\",\"value\":1}"
        for i in 1..<2000 {
            let a = Int.random(in: 0..<i, using: &rng), b = Int.random(in: 0..<i, using: &rng)
            s += i % 3 == 0 ? ",{\"id\":\"n\(i)\",\"value\":\(i)}" : ",{\"id\":\"n\(i)\",\"op\":\"add\",\"inputs\":[\"n\(a)\",\"n\(b)\"]}"
        }
        s += "]}"
        let spec = try decode(s)
        #expect(spec.ids == (0..<2000).map { "n\($0)" })
    }

    @Test func reversedRequestsSortToInputsFirst() throws {
        // Listed users-first: every node must still follow its inputs, and two decodes agree exactly.
        var s = "{\"nodes\":["
        for i in stride(from: 999, through: 1, by: -1) { s += "{\"id\":\"n\(i)\",\"op\":\"mul\",\"inputs\":[\"n\(i - 1)\",\"n\(i / 2)\"]}," }
        s += "{\"id\":\"n0\",\"value\":1.5}]}"
        let spec = try decode(s)
        for i in 0..<spec.count where spec.ops[i] != .leaf {
            #expect(spec.lhs[i] < i && spec.rhs[i] < i)
        }
        #expect(try decode(s) == spec)
    }
}
