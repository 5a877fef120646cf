import Foundation
import Micrograd
import Testing
@testable import MicrogradGraph

@Suite struct DOTEncoderTests {
    /// Runs `dot -Tsvg` on the text (bounded: 30 s); returns the exit status and stderr.
    func render(_ dot: [UInt8]) throws -> (status: Int32, stderr: String, svg: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["dot", "-Tsvg"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // A hang guard for the reads below: a stuck `dot` is killed, which ends its output.
        let pid = process.processIdentifier
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if finished.wait(timeout: .now() + 60) == .timedOut { kill(pid, SIGKILL) }
        }
        defer { finished.signal() }
        let writer = Thread { input.fileHandleForWriting.write(Data(dot)); try? input.fileHandleForWriting.close() }
        writer.start()
        let svg = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: err, as: UTF8.self), String(decoding: svg, as: UTF8.self))
    }

    @Test func seedGraphInMicrogradStyle() throws {
        let text = String(decoding: GraphEncoder.dot(try evaluate(seedRequest)), as: UTF8.self)
        #expect(text.hasPrefix("digraph micrograd {"))
        #expect(text.contains("rankdir=LR"))
        #expect(text.contains(#"node [shape=record, fontname="DejaVu Sans"]"#))
        #expect(text.contains(#"n0 [label="{ a | data 2.0000 | grad -3.0000 }""#), "\(text)")
        #expect(text.contains(#"n4 [label="{ d | data 4.0000 | grad 1.0000 }", style=filled"#), "\(text)")
        #expect(text.contains(#"op3 [shape=ellipse, label="*"]"#))
        #expect(text.contains(#"op5 [shape=ellipse, label="**2"]"#))
        #expect(text.contains("n0 -> op3;") && text.contains("op3 -> n3;"))
        let r = try render(Array(text.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.svg.contains("data 4.0000"))
        #expect(r.svg.contains(#"font-family="DejaVu Sans""#), "the drawing names the font the layout was measured with")
    }

    @Test func hostileIDsRender() throws {
        let ids = ["q\"uote", "{brace}", "bar|bar", "<port>", "back\\", "\\", "new\nline", "é€𝄞 non-ASCII", "a b  c",
                   "\u{0}\u{7}\u{7F}", "\\\"", "\"", "-> n0 [", "}\"; digraph x {", "\\N", "\\l\\r"]
        var body = "{\"nodes\":["
        for (k, id) in ids.enumerated() {
            var w = ByteWriter(capacity: 16)
            w.jsonString(id)
            let escaped = String(decoding: w.take(), as: UTF8.self)
            body += k == 0 ? "{\"id\":\(escaped),\"value\":1}" : ",{\"id\":\(escaped),\"op\":\"sub\",\"inputs\":[\(prevID(ids, k)),1]}"
        }
        body += "]}"
        let g = try evaluate(body)
        #expect(g.spec.count == ids.count * 2 - 1)
        // Also every id as a label, since labels are drawn when present.
        var labelled = g.spec
        labelled.labels = labelled.ids.reversed()
        for graph in [g, EvaluatedGraph(spec: labelled, data: g.data, grad: g.grad)] {
            let r = try render(GraphEncoder.dot(graph))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!r.stderr.contains("syntax error"), "\(r.stderr)")
        }
    }

    /// The JSON text of the previous id, as an input reference.
    func prevID(_ ids: [String], _ k: Int) -> String {
        var w = ByteWriter(capacity: 16)
        w.jsonString(ids[k - 1])
        return String(decoding: w.take(), as: UTF8.self)
    }

    @Test func everyOpRenders() throws {
        let body = #"{"nodes":[{"id":"a","value":2},{"id":"b","value":0.5},{"id":"s","op":"sub","inputs":["a","b"]},{"id":"d","op":"div","inputs":["s","b"]},{"id":"p","op":"pow","inputs":["d","b"]},{"id":"q","op":"pow","inputs":["p"],"exponent":-1.5},{"id":"e","op":"exp","inputs":["q"]},{"id":"l","op":"log","inputs":["e"]},{"id":"t","op":"tanh","inputs":["l"]},{"id":"r","op":"relu","inputs":["t"]},{"id":"g","op":"sigmoid","inputs":["r"]},{"id":"n","op":"neg","inputs":["g"]},{"id":"m","op":"mul","inputs":["n",3]}]}"#
        let dot = GraphEncoder.dot(try evaluate(body))
        let text = String(decoding: dot, as: UTF8.self)
        #expect(text.contains(#"label="**-1.5""#))
        #expect(text.contains(#"[label="0"]"#) && text.contains(#"[label="1"]"#))
        let r = try render(dot)
        #expect(r.status == 0, "\(r.stderr)")
    }
}
