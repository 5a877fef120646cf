import Foundation
import Micrograd
import MicrogradGraph
import Testing

@testable import MicrogradService

@Suite("Graph store")
struct GraphStoreTests {
    func graph(nodes: Int) -> EvaluatedGraph {
        var spec = GraphSpec()
        for i in 0..<nodes { spec.append(id: "n\(i)", op: .leaf, value: Double(i)) }
        spec.output = Int32(nodes - 1)
        return EvaluatedGraph(spec: spec, data: spec.values, grad: Array(repeating: 0, count: nodes))
    }

    @Test func evictsTheLeastRecentlyUsedByCount() {
        let store = GraphStore(limits: .init(maxGraphs: 2, maxBytes: 1 << 30))
        store.insert(graph(nodes: 1), id: "one")
        store.insert(graph(nodes: 2), id: "two")
        _ = store.graph(id: "one")  // "two" is now the least recently used
        store.insert(graph(nodes: 3), id: "three")
        #expect(store.graph(id: "two") == nil)
        #expect(store.graph(id: "one") != nil && store.graph(id: "three") != nil)
        #expect(store.count == 2)
    }

    @Test func evictsByBytesAndRefusesWhatCanNeverFit() {
        let size = GraphStore.estimatedBytes(of: graph(nodes: 100))
        let store = GraphStore(limits: .init(maxGraphs: 100, maxBytes: size * 2 + size / 2))
        for i in 0..<5 { #expect(store.insert(graph(nodes: 100), id: "g\(i)")) }
        #expect(store.count == 2 && store.totalBytes <= size * 2 + size / 2)
        #expect(store.graph(id: "g4") != nil && store.graph(id: "g0") == nil)
        #expect(!store.insert(graph(nodes: 10_000), id: "huge"))
        #expect(store.graph(id: "huge") == nil)
    }

    @Test func mostRecentUnlessPrivate() {
        let open = GraphStore()
        open.insert(graph(nodes: 1), id: "a")
        open.insert(graph(nodes: 1), id: "b")
        #expect(open.graph(id: nil)?.id == "b")
        let closed = GraphStore(remembersMostRecent: false)
        closed.insert(graph(nodes: 1), id: "a")
        #expect(closed.graph(id: nil) == nil && closed.graph(id: "a")?.id == "a")
    }

    /// Thousands of inserts and reads against a plain model of LRU: the use queue (with its stale items and
    /// compactions) must evict exactly what scanning for the oldest would.
    @Test func lruMatchesAModelOverManyOperations() {
        let maxGraphs = 5
        let store = GraphStore(limits: .init(maxGraphs: maxGraphs, maxBytes: 1 << 30))
        var model: [String] = []  // ids, least recently used first
        var rng = SplitMix64(seed: 42)
        let one = graph(nodes: 1)
        for step in 0..<5_000 {
            let id = "g\(rng.next() % 9)"
            if rng.next() % 3 == 0 {
                let found = store.graph(id: id) != nil
                #expect(found == model.contains(id), "step \(step): read \(id)")
                if let k = model.firstIndex(of: id) { model.remove(at: k); model.append(id) }
            } else {
                store.insert(one, id: id)
                model.removeAll { $0 == id }
                model.append(id)
                if model.count > maxGraphs { model.removeFirst() }
            }
            #expect(store.count == model.count, "step \(step)")
        }
        for id in (0..<9).map({ "g\($0)" }) {
            #expect((store.graph(id: id) != nil) == model.contains(id))
        }
    }

    @Test func idsAreUnguessableHex() {
        let ids = (0..<1000).map { _ in GraphStore.makeID() }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } })
    }
}

@Suite("Content negotiation")
struct NegotiationTests {
    @Test(arguments: [
        (nil as String?, nil as String?, GraphFormat.json as GraphFormat?),
        ("dot", "application/json", .dot),
        (nil, "text/vnd.graphviz", .dot),
        (nil, "application/json;q=0.5, image/svg+xml", .svg),
        (nil, "image/svg+xml;q=0.1, application/vnd.jgf+json;q=0.2", .jgf),
        (nil, "text/html", nil),
        (nil, "text/html, */*;q=0.1", .json),
        (nil, "application/json;q=0", nil),
        ("xml", nil, nil),
    ])
    func chooses(format: String?, accept: String?, expected: GraphFormat?) {
        #expect(GraphFormat.negotiate(formatParameter: format, accept: accept, default: .json, allowed: GraphFormat.allCases)
            == expected)
    }
}

@Suite("Request content type")
struct ContentTypeTests {
    @Test(arguments: [
        ("application/json", true), ("Application/JSON", true), ("application/json; charset=utf-8", true),
        (" \tapplication/json \t;charset=utf-8", true), ("application/problem+json", true), ("APPLICATION/VND.X+JSON", true),
        ("application/+json", true), ("application/jsonx", false), ("text/json", false), ("text/plain", false),
        ("application/json+x", false), ("", false), (";", false), ("json", false), ("application/ json", false),
    ])
    func recognisesJSON(contentType: String, expected: Bool) {
        #expect(EvaluateRoute.isJSON(contentType) == expected)
    }
}

@Suite("SVG renderer")
struct SVGRendererTests {
    @Test func rendersWithDot() throws {
        let svg = try SVGRenderer().render(dot: Array("digraph { a -> b }".utf8)).get()
        #expect(String(decoding: svg, as: UTF8.self).contains("<svg"))
    }

    @Test func reportsAMissingRendererAndAFailingOne() {
        let missing = SVGRenderer(configuration: .init(dotPath: "/nonexistent/dot")).render(dot: Array("digraph {}".utf8))
        guard case .failure(.unavailable) = missing else { Issue.record("expected unavailable, got \(missing)"); return }
        let broken = SVGRenderer().render(dot: Array("this is not dot".utf8))
        guard case .failure(.failed) = broken else { Issue.record("expected failed, got \(broken)"); return }
    }

    /// The renderer and everything it started are killed at the deadline: the fake `dot` forks a `sleep` (as a
    /// wrapper script or a forking plugin would) and waits for it.
    @Test func killsARendererThatTakesTooLongAndItsChildren() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("micrograd-slow-dot-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("dot").path
        // The child runs as <directory>/sleeper, so its command line names this test's directory.
        let sleeper = directory.appendingPathComponent("sleeper").path
        try FileManager.default.createSymbolicLink(atPath: sleeper, withDestinationPath: "/bin/sleep")
        try "#!/bin/sh\n'\(sleeper)' 30 &\nwait\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let renderer = SVGRenderer(configuration: .init(dotPath: script, timeout: .seconds(1)))
        var result: Result<[UInt8], SVGRenderer.Failure> = .failure(.unavailable("not run"))
        // A child spawned meanwhile by another test may briefly hold the new script's write descriptor (ETXTBSY).
        for _ in 0..<50 {
            result = renderer.render(dot: Array("digraph {}".utf8))
            guard case .failure(.unavailable(let why)) = result, why.contains("busy") else { break }
            usleep(20_000)
        }
        #expect(result == .failure(.timedOut))
        // SIGKILL is immediate; an orphan is reaped by init soon after. The bound is only a hang guard.
        var left = processes(mentioning: directory.path)
        for _ in 0..<1000 where !left.isEmpty {
            usleep(10_000)
            left = processes(mentioning: directory.path)
        }
        for pid in left { kill(pid, SIGKILL) }
        #expect(left.isEmpty, "the renderer's processes outlived its timeout: \(left)")
    }
}

/// Live processes (zombies excluded) whose command line contains `text`.
func processes(mentioning text: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
              String(decoding: commandLine, as: UTF8.self).contains(text),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[close...].hasPrefix(") Z")
    }
}
