import Foundation
import HTTPServer
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

    func spec(nodes: Int) -> GraphSpec { graph(nodes: nodes).spec }

    @Test func evictsTheLeastRecentlyUsedByCount() {
        let store = InMemoryGraphStore(limits: .init(maxGraphs: 2, maxBytes: 1 << 30))
        #expect(store.putEvaluation(graph(nodes: 1), id: "one") == .stored)
        #expect(store.putEvaluation(graph(nodes: 2), id: "two") == .stored)
        _ = store.evaluation(id: "one")  // "two" is now the least recently used
        #expect(store.putEvaluation(graph(nodes: 3), id: "three") == .stored)
        #expect(store.evaluation(id: "two").isAbsent)
        #expect(store.evaluation(id: "one").value != nil && store.evaluation(id: "three").value != nil)
        #expect(store.count == 2)
    }

    @Test func evictsByBytesAndRefusesWhatCanNeverFit() {
        let size = graph(nodes: 100).estimatedBytes
        let store = InMemoryGraphStore(limits: .init(maxGraphs: 100, maxBytes: size * 2 + size / 2))
        for i in 0..<5 { #expect(store.putEvaluation(graph(nodes: 100), id: "g\(i)") == .stored) }
        #expect(store.count == 2 && store.totalBytes <= size * 2 + size / 2)
        #expect(store.evaluation(id: "g4").value != nil && store.evaluation(id: "g0").isAbsent)
        #expect(store.putEvaluation(graph(nodes: 10_000), id: "huge") == .notStored(.tooLarge))
        #expect(store.evaluation(id: "huge").isAbsent)
    }

    @Test func mostRecentFollowsPutsAndDeletes() {
        let store = InMemoryGraphStore()
        #expect(store.mostRecentEvaluation().isAbsent)
        _ = store.putEvaluation(graph(nodes: 1), id: "a")
        _ = store.putEvaluation(graph(nodes: 1), id: "b")
        #expect(store.mostRecentEvaluation().value?.id == "b")
        #expect(store.deleteEvaluation(id: "b") == .deleted)
        #expect(store.deleteEvaluation(id: "b") == .absent)
        #expect(store.mostRecentEvaluation().isAbsent && store.evaluation(id: "a").value?.id == "a")
        #expect(store.count == 1 && store.totalBytes == graph(nodes: 1).estimatedBytes)
    }

    /// Thousands of puts, reads and deletes against a plain model of LRU: the use queue (with its stale items and
    /// compactions) must evict exactly what scanning for the oldest would.
    @Test func lruMatchesAModelOverManyOperations() {
        let maxGraphs = 5
        let store = InMemoryGraphStore(limits: .init(maxGraphs: maxGraphs, maxBytes: 1 << 30))
        var model: [String] = []  // ids, least recently used first
        var rng = SplitMix64(seed: 42)
        let one = graph(nodes: 1)
        for step in 0..<5_000 {
            let id = "g\(rng.next() % 9)"
            switch rng.next() % 7 {
            case 0, 1:
                let found = store.evaluation(id: id).value != nil
                #expect(found == model.contains(id), "step \(step): read \(id)")
                if let k = model.firstIndex(of: id) { model.remove(at: k); model.append(id) }
            case 2:
                let deleted = store.deleteEvaluation(id: id) == .deleted
                #expect(deleted == model.contains(id), "step \(step): delete \(id)")
                model.removeAll { $0 == id }
            default:
                _ = store.putEvaluation(one, id: id)
                model.removeAll { $0 == id }
                model.append(id)
                if model.count > maxGraphs { model.removeFirst() }
            }
            #expect(store.count == model.count, "step \(step)")
        }
        for id in (0..<9).map({ "g\($0)" }) {
            #expect((store.evaluation(id: id).value != nil) == model.contains(id))
        }
    }

    @Test func idsAreUnguessableHex() {
        let store = InMemoryGraphStore()
        let ids = (0..<1000).map { _ in store.newEvaluationID() }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } })
    }

    @Test func registeredGraphsAreKeptByKeyAndNeverEvictedByEvaluations() {
        let store = InMemoryGraphStore(limits: .init(maxGraphs: 1, maxBytes: 1 << 20))
        #expect(store.register(spec(nodes: 3), key: "k1") == .created)
        #expect(store.register(spec(nodes: 5), key: "k1") == .alreadyExisted)
        #expect(store.registered(key: "k1").value == spec(nodes: 3))  // the first spec stays
        for i in 0..<10 { _ = store.putEvaluation(graph(nodes: 2), id: "e\(i)") }
        #expect(store.registered(key: "k1").value != nil && store.count == 1)
        #expect(store.registered(key: "nope").isAbsent)
        #expect(store.deleteRegistered(key: "k1") == .deleted)
        #expect(store.deleteRegistered(key: "k1") == .absent)
        #expect(store.registered(key: "k1").isAbsent)
        #expect(store.registeredCount == 0 && store.registeredBytes == 0)
    }

    @Test func registeredGraphsHaveTheirOwnBounds() {
        let size = spec(nodes: 10).estimatedBytes
        let byCount = InMemoryGraphStore(limits: .init(maxRegisteredGraphs: 2))
        #expect(byCount.register(spec(nodes: 10), key: "a") == .created)
        #expect(byCount.register(spec(nodes: 10), key: "b") == .created)
        #expect(byCount.register(spec(nodes: 10), key: "c") == .notStored(.full))
        #expect(byCount.register(spec(nodes: 10), key: "a") == .alreadyExisted)
        #expect(byCount.deleteRegistered(key: "a") == .deleted)
        #expect(byCount.register(spec(nodes: 10), key: "c") == .created)

        let byBytes = InMemoryGraphStore(limits: .init(maxRegisteredBytes: size * 2 + size / 2))
        #expect(byBytes.register(spec(nodes: 10), key: "a") == .created)
        #expect(byBytes.register(spec(nodes: 10), key: "b") == .created)
        #expect(byBytes.register(spec(nodes: 10), key: "c") == .notStored(.full))
        #expect(byBytes.register(spec(nodes: 1_000), key: "huge") == .notStored(.tooLarge))
        #expect(byBytes.registeredCount == 2 && byBytes.registeredBytes == 2 * size)
    }

    @Test func defaultRegistryBoundsAreAtLeastAThousandGraphsAnd256MiB() {
        let limits = InMemoryGraphStore.Limits()
        #expect(limits.maxRegisteredGraphs >= 1_000 && limits.maxRegisteredBytes >= 256 << 20)
    }
}

extension StoreRead {
    var isAbsent: Bool {
        if case .absent = self { return true }
        return false
    }
}

@Suite("Problem mapping")
struct ProblemMappingTests {
    /// The service's one mapping from the graph layer's kinds to HTTP, as openapi.yaml documents it.
    @Test func everyKindHasItsStatusAndTypeURI() throws {
        let expected: [Problem.Kind: Int] = [
            .malformedJSON: 400, .invalidRequest: 400, .invalidGraph: 422, .invalidExpression: 422, .tooLarge: 413,
            .invalidValues: 422,
        ]
        let spec = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        for kind in Problem.Kind.allCases {
            let mapped = ServiceProblem(Problem(kind, "Something.", pointer: "/x", column: 3))
            #expect(mapped.status == expected[kind])
            #expect(mapped.type == "/problems/\(kind.rawValue)" && mapped.title == kind.title)
            #expect(mapped.pointer == "/x" && mapped.column == 3)
            #expect(spec.contains("- \(mapped.type)\n"))
        }
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
        ("SVG", "text/html", .svg),
    ])
    func chooses(format: String?, accept: String?, expected: GraphFormat?) {
        let request = HTTPRequest(
            method: "GET", path: "/graph.dot", query: format.map { [("format", $0)] } ?? [],
            headers: accept.map { [("Accept", $0)] } ?? [])
        #expect((try? GraphRepresentation.choose(request, default: .json).get()) == expected)
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
