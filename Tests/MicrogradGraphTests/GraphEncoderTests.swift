import Foundation
import Micrograd
import Testing
@testable import MicrogradGraph

@Suite struct GraphEncoderTests {
    @Test func seedResponseIsExact() throws {
        let out = String(decoding: GraphEncoder.json(try evaluate(seedRequest), graphID: "g1"), as: UTF8.self)
        #expect(out == """
            {"id":"g1","output":"d","value":4.0,"nodes":[\
            {"id":"a","label":"a","data":2.0,"grad":-3.0},\
            {"id":"b","data":-3.0,"grad":2.0},\
            {"id":"c","data":10.0,"grad":1.0},\
            {"id":"e","op":"mul","inputs":["a","b"],"data":-6.0,"grad":1.0},\
            {"id":"d","op":"add","inputs":["e","c"],"data":4.0,"grad":1.0},\
            {"id":"p","op":"pow","inputs":["d"],"exponent":2.0,"data":16.0,"grad":0.0}]}
            """)
    }

    @Test func constantsAndNonFiniteNumbers() throws {
        let g = try evaluate(#"{"nodes":[{"id":"a","value":"-Infinity"},{"id":"n","value":"NaN"},{"id":"s","op":"add","inputs":["a",1e-7]}]}"#)
        let out = String(decoding: GraphEncoder.json(g, graphID: "x"), as: UTF8.self)
        #expect(out.contains(#"{"id":"a","data":"-Infinity","grad":1.0}"#), "\(out)")
        #expect(out.contains(#"{"id":"n","data":"NaN","grad":0.0}"#), "\(out)")
        #expect(out.contains(##"{"id":"#1","constant":true,"data":1e-07,"grad":1.0}"##), "\(out)")
        #expect(out.contains(#""value":"-Infinity""#))
    }

    /// A registered graph's answers through its skeleton are byte for byte the ordinary answers, whatever values
    /// its leaves take (changed, unchanged, non-finite, -0.0): labels, escapes, constants and exponents included.
    @Test func skeletonAnswersAreTheOrdinaryAnswers() throws {
        let body = #"{"nodes":[{"id":"a\"q","value":2,"label":"L\u0001é"},{"id":"b","value":-3},{"id":"n","value":"NaN"},"#
            + #"{"id":"c","op":"mul","inputs":["a\"q","b"]},{"id":"p","op":"pow","inputs":["c"],"exponent":2.5},"#
            + #"{"id":"s","op":"add","inputs":["p",1e-7]},{"id":"t","op":"tanh","inputs":["s"]}],"output":"t"}"#
        let spec = try decode(body)
        let skeleton = GraphEncoder.jsonSkeleton(spec)
        #expect(skeleton.nodeCount == spec.count)
        for values: [Double] in [[2, -3], [0.25, -3], [2, .nan], [-0.0, .infinity], [1e300, .leastNonzeroMagnitude], [2, 0]] {
            var changed = spec
            changed.values[0] = values[0]
            changed.values[1] = values[1]
            let g = GraphEvaluator.evaluate(changed)
            for id in ["g", nil] as [String?] {
                let plain = GraphEncoder.json(g, graphID: id)
                #expect(GraphEncoder.json(g, graphID: id, skeleton: skeleton) == plain, "\(values)")
            }
        }
        let empty = GraphSpec()
        let g = EvaluatedGraph(spec: empty, data: [], grad: [])
        #expect(GraphEncoder.json(g, graphID: "e", skeleton: GraphEncoder.jsonSkeleton(empty)) == GraphEncoder.json(g, graphID: "e"))
    }

    @Test func responseDecodesBackAsJSONWithHostileIDs() throws {
        let ids = ["q\"uote", "back\\slash", "new\nline", "tab\t", "\u{0}\u{1}\u{1F}", "é€𝄞", "</script>", "\u{2028}"]
        var body = "{\"nodes\":["
        for (k, id) in ids.enumerated() {
            let escaped = String(decoding: {
                var w = ByteWriter(capacity: 16); w.jsonString(id); return w.take()
            }(), as: UTF8.self)
            body += (k > 0 ? "," : "") + "{\"id\":\(escaped),\"value\":\(k),\"label\":\(escaped)}"
        }
        body += "]}"
        let g = try evaluate(body)
        let object = try jsonObject(GraphEncoder.json(g, graphID: "id\"x"))
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["id"] as? String } == ids)
        #expect(nodes.map { $0["label"] as? String } == ids)
        #expect(object["id"] as? String == "id\"x")
    }

    @Test func doublesRoundTripExactlyThroughWriterAndReader() throws {
        // 10,000 random bit patterns (every exponent, subnormals, both zeros, non-finite) written and read back.
        var rng = SplitMix64(seed: 2026)
        var doubles = (0..<10_000).map { _ in Double(bitPattern: rng.next()) }
        doubles += [0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude, .leastNormalMagnitude,
                    .infinity, -.infinity, .nan, 4, 0.1, 1e21, 1e-7, 1.2345678901234568e20]
        var w = ByteWriter(capacity: 1 << 20)
        w.ascii("{\"nodes\":[")
        for (k, d) in doubles.enumerated() {
            if k > 0 { w.byte(UInt8(ascii: ",")) }
            w.ascii("{\"id\":\"")
            w.int(k)
            w.ascii("\",\"value\":")
            w.jsonNumber(d)
            w.byte(UInt8(ascii: "}"))
        }
        w.ascii("]}")
        let spec = try GraphRequestDecoder.decode(w.take(), limits: GraphLimits())
        #expect(spec.count == doubles.count)
        var bad = 0
        for (k, d) in doubles.enumerated() where !(d.isNaN ? spec.values[k].isNaN : spec.values[k].bitPattern == d.bitPattern) {
            bad += 1
        }
        #expect(bad == 0)
    }

    @Test func shortestRoundTripText() {
        for (d, text) in [(4.0, "4.0"), (-0.0, "-0.0"), (1e-7, "1e-07"), (1e21, "1e+21"), (.leastNonzeroMagnitude, "5e-324"), (0.1, "0.1"),
                          (Double.nan, "\"NaN\""), (Double.infinity, "\"Infinity\"")] {
            var w = ByteWriter(capacity: 8)
            w.jsonNumber(d)
            #expect(String(decoding: w.take(), as: UTF8.self) == text)
        }
    }

    @Test func encodingIsDeterministic() throws {
        let body = Array(chainRequest(steps: 500))
        let a = GraphEncoder.json(GraphEvaluator.evaluate(try GraphRequestDecoder.decode(body, limits: GraphLimits()), on: Tape()), graphID: "g")
        let b = GraphEncoder.json(GraphEvaluator.evaluate(try GraphRequestDecoder.decode(body, limits: GraphLimits()), on: Tape()), graphID: "g")
        #expect(a == b)
        // Two evaluations of the same request on different tapes encode to the same bytes in every format.
        let g = try evaluate(seedRequest), h = try evaluate(seedRequest)
        #expect(GraphEncoder.dot(g) == GraphEncoder.dot(h))
        #expect(GraphEncoder.jgf(g, graphID: "g") == GraphEncoder.jgf(h, graphID: "g"))
    }

    @Test func problemBody() throws {
        let object = try jsonObject(GraphEncoder.problem(
            type: "/problems/invalid-graph", title: "Invalid graph", status: 422, detail: "unknown id \"x\"\n",
            instance: "/evaluate", location: .init(pointer: "/nodes/3/inputs/1")))
        #expect(object["type"] as? String == "/problems/invalid-graph")
        #expect(object["title"] as? String == "Invalid graph")
        #expect(object["status"] as? Int == 422)
        #expect(object["detail"] as? String == "unknown id \"x\"\n")
        #expect(object["pointer"] as? String == "/nodes/3/inputs/1")
        #expect(object["instance"] as? String == "/evaluate")
        #expect(object["column"] == nil)
        let e = try jsonObject(GraphEncoder.problem(
            type: "/problems/invalid-expression", title: "Invalid expression", status: 422, detail: "bad", location: .init(column: 7)))
        #expect(e["column"] as? Int == 7 && e["instance"] == nil)
    }

    @Test func jgfShape() throws {
        let g = try evaluate(seedRequest)
        let object = try jsonObject(GraphEncoder.jgf(g, graphID: "g1"))
        let graph = try #require(object["graph"] as? [String: Any])
        #expect(graph["id"] as? String == "g1")
        #expect(graph["directed"] as? Bool == true)
        let metadata = try #require(graph["metadata"] as? [String: Any])
        #expect(metadata["output"] as? String == "d")
        #expect(metadata["value"] as? Double == 4)
        let nodes = try #require(graph["nodes"] as? [String: [String: Any]])
        #expect(Set(nodes.keys) == ["a", "b", "c", "e", "d", "p"])
        let a = try #require(nodes["a"]?["metadata"] as? [String: Any])
        #expect(a["op"] as? String == "leaf" && a["data"] as? Double == 2 && a["grad"] as? Double == -3)
        #expect(nodes["a"]?["label"] as? String == "a")
        let p = try #require(nodes["p"]?["metadata"] as? [String: Any])
        #expect(p["op"] as? String == "pow" && p["exponent"] as? Double == 2)
        let edges = try #require(graph["edges"] as? [[String: Any]])
        let triples = edges.map { "\($0["source"]!)->\($0["target"]!)#\(($0["metadata"] as? [String: Any])?["index"] ?? "")" }
        #expect(triples == ["a->e#0", "b->e#1", "e->d#0", "c->d#1", "d->p#0"])
        #expect(edges.allSatisfy { $0["relation"] as? String == "input" })
    }

    @Test func fixedFourDecimalsMatchPrintf() {
        var rng = SplitMix64(seed: 99)
        var values: [Double] = [0, -0.0, 1.03125, 1.09375, 0.00005, 0.00015, 2.5, -2.5e-5, 0.99995, 9.99995, 123456.78905,
                                1e15 + 0.3, 4503599627370495.5, 9007199254740994, 1.8446744073709552e19, 1e300, -1e22,
                                .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        for _ in 0..<20_000 {
            let scale = [1e-6, 1e-3, 1, 1e3, 1e9, 1e13][Int(rng.next() % 6)]
            values.append((Double(rng.next() >> 11) / Double(1 << 53) * 2 - 1) * scale)
            values.append(Double(Int64(bitPattern: rng.next()) % 2_000_000) / 16)  // exact ties at the 4th decimal
            values.append(Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF))
        }
        var bad: [String] = []
        for v in values {
            var w = ByteWriter(capacity: 32)
            FixedDecimal.write4(v, to: &w)
            let got = String(decoding: w.take(), as: UTF8.self)
            let want = String(format: "%.4f", v)
            if got != want { bad.append("\(v): \(got) != \(want)") }
        }
        #expect(bad.isEmpty, "\(bad.prefix(5))")
    }
}
