import Foundation
import HTTPServer
import Micrograd
import MicrogradGraph
import MicrogradService
import RedisClient
import RedisTesting
import Testing

private let request = #"""
    {"nodes": [{"id": "a", "value": 2.0, "label": "input a"}, {"id": "b", "value": -3.0}, {"id": "c", "value": 10},
               {"id": "e", "op": "mul", "inputs": ["a", "b"]}, {"id": "d", "op": "add", "inputs": ["e", "c"]},
               {"id": "p", "op": "pow", "inputs": ["d"], "exponent": 2}, {"id": "t", "op": "tanh", "inputs": ["p"]}]}
    """#

private func evaluated(_ body: String = request) throws -> EvaluatedGraph {
    try EvaluationPipeline().evaluate(Array(body.utf8), for: .json)
}

/// A large graph: a chain of `n` additions over two leaves.
private func chain(_ n: Int) -> String {
    var nodes = [#"{"id":"x0","value":0.5}"#, #"{"id":"k","value":1e-6}"#]
    for i in 1...n { nodes.append(#"{"id":"x\#(i)","op":"add","inputs":["x\#(i - 1)","k"]}"#) }
    return #"{"nodes":[\#(nodes.joined(separator: ","))]}"#
}

private func post(_ service: GraphService, _ body: String) -> HTTPResponse {
    service.respond(to: HTTPRequest(
        method: "POST", path: "/evaluate", headers: [("Content-Type", "application/json")], body: Array(body.utf8)))
}

private func get(_ service: GraphService, _ path: String, id: String? = nil) -> HTTPResponse {
    service.respond(to: HTTPRequest(method: "GET", path: path, query: id.map { [(name: "id", value: $0)] } ?? []))
}

private func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

/// Equal down to the bits (`==` on a spec is false for a NaN leaf, which the codec must still carry).
private func sameSpec(_ a: GraphSpec, _ b: GraphSpec) -> Bool {
    a.ids == b.ids && a.labels == b.labels && a.ops == b.ops && a.lhs == b.lhs && a.rhs == b.rhs
        && a.values.map(\.bitPattern) == b.values.map(\.bitPattern) && a.isConstant == b.isConstant && a.output == b.output
}

private func sameGraph(_ a: EvaluatedGraph, _ b: EvaluatedGraph) -> Bool {
    sameSpec(a.spec, b.spec) && a.data.map(\.bitPattern) == b.data.map(\.bitPattern) && a.grad.map(\.bitPattern) == b.grad.map(\.bitPattern)
}

@Suite struct GraphCodecTests {
    @Test func roundTripsEvaluationsAndSpecsExactly() throws {
        for body in [request, chain(1_000), #"{"expression":"tanh(x*w + b) ** -1.5 / relu(-x)","values":{"x":-0.0,"w":"NaN","b":"Infinity"}}"#] {
            let graph = try evaluated(body)
            #expect(sameSpec(try GraphCodec.decodeSpec(GraphCodec.encode(graph.spec)), graph.spec))
        }
    }

    @Test func bytesPerNodeAreAFractionOfTheJSONAnswer() throws {
        let graph = try evaluated(chain(100_000))
        let encoded = GraphCodec.encode(graph).count
        let json = GraphEncoder.json(graph, graphID: EvaluationID.random()).count
        let perNode = Double(encoded) / Double(graph.spec.count)
        print("codec: \(graph.spec.count) nodes, \(encoded) bytes (\(perNode) per node); JSON answer \(json) bytes")
        #expect(perNode < 32)
        #expect(encoded * 3 < json)
    }

    @Test func everyTruncationAndForeignValueIsAnErrorNotACrash() throws {
        let value = GraphCodec.encode(try evaluated())
        for length in 0..<value.count {
            #expect(throws: GraphCodec.Failure.self) { try GraphCodec.decodeEvaluation(Array(value[..<length])) }
        }
        #expect(throws: GraphCodec.Failure.self) { try GraphCodec.decodeEvaluation(value + [0]) }
        #expect(throws: GraphCodec.Failure.self) { try GraphCodec.decodeSpec(value) }  // an evaluation is not a spec
        #expect(throws: GraphCodec.Failure.self) { try GraphCodec.decodeEvaluation(Array(#"{"id":"json"}"#.utf8)) }
        // Every single-byte corruption either decodes to some graph or is refused; none crashes.
        var generator = SplitMix64(seed: 14)
        for _ in 0..<2_000 {
            var corrupt = value
            corrupt[Int(generator.next() % UInt64(corrupt.count))] = UInt8(truncatingIfNeeded: generator.next())
            _ = try? GraphCodec.decodeEvaluation(corrupt)
        }
        // A count that claims more nodes than the value holds is refused before anything is reserved.
        #expect(throws: GraphCodec.Failure.self) {
            try GraphCodec.decodeEvaluation(Array("MGE1".utf8) + [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1])
        }
    }
}

/// Real redis-servers; "replicas" are GraphService instances that share nothing but the Redis.
@Suite struct RedisGraphStoreTests {
    private func replica(_ redis: RedisServer, ttl: Duration = .seconds(3600), timeout: Duration = .milliseconds(300)) -> (GraphService, RedisGraphStore) {
        var configuration = redis.configuration(commandTimeout: timeout, probeInterval: .milliseconds(250))
        configuration.connectTimeout = .milliseconds(250)
        let store = RedisGraphStore(configuration: configuration, ttl: ttl)
        return (GraphService(store: store), store)
    }

    @Test func anIDMintedByOneReplicaIsReadByAnother() throws {
        let redis = try RedisServer()
        let (a, storeA) = replica(redis)
        let (b, storeB) = replica(redis)
        defer { storeA.client.close(); storeB.client.close() }

        let answer = post(a, request)
        #expect(answer.status == 200 && answer.header("Graph-Not-Stored") == nil)
        let id = try #require(answer.header("X-Graph-Id"))
        for path in ["/graph.json", "/graph.dot"] {
            let onA = get(a, path, id: id), onB = get(b, path, id: id)
            #expect(onB.status == 200 && onB.body == onA.body, "\(path): \(text(onB))")
        }
        #expect(text(get(b, "/graph.json")).contains(id))  // the most recent across replicas
        #expect(get(b, "/graph.json", id: EvaluationID.random()).status == 404)
        #expect(get(b, "/graph.json", id: "not-an-id").status == 404)

        let later = post(b, chain(10))
        let laterID = try #require(later.header("X-Graph-Id"))
        #expect(text(get(a, "/graph.json")).contains(laterID))

        // Evaluations expire after the TTL; registered graphs never do.
        let ttl = try redis.send("TTL", "micrograd:v1:eval:\(id)")
        guard case .integer(let seconds) = ttl else { Issue.record("TTL: \(ttl)"); return }
        #expect(seconds > 3500 && seconds <= 3600)
        #expect(storeB.deleteEvaluation(id: id) == .deleted)
        #expect(get(a, "/graph.json", id: id).status == 404)
        #expect(storeA.deleteEvaluation(id: id) == .absent)
    }

    @Test func evaluationsExpireAfterTheTTL() throws {
        let redis = try RedisServer()
        let (a, store) = replica(redis, ttl: .seconds(1))
        defer { store.client.close() }
        let id = try #require(post(a, request).header("X-Graph-Id"))
        #expect(get(a, "/graph.json", id: id).status == 200)
        let start = ContinuousClock.now
        while get(a, "/graph.json", id: id).status == 200, ContinuousClock.now - start < .seconds(5) { usleep(100_000) }
        #expect(get(a, "/graph.json", id: id).status == 404)
        #expect(get(a, "/graph.json").status == 404)  // the most-recent pointer expired with it
    }

    @Test func registeredGraphsAreSharedNeverExpireAndDeletesAreSeenAtOnce() throws {
        let redis = try RedisServer()
        let (_, a) = replica(redis)
        let (_, b) = replica(redis)
        defer { a.client.close(); b.client.close() }
        let spec = try evaluated().spec
        #expect(a.register(spec, key: "g1") == .created)
        #expect(b.register(spec, key: "g1") == .alreadyExisted)
        #expect(b.registered(key: "g1").value == spec)
        #expect(try redis.send("TTL", "micrograd:v1:graph:g1") == .integer(-1))
        #expect(a.deleteRegistered(key: "g1") == .deleted)
        #expect(b.registered(key: "g1").value == nil)
        if case .absent = b.registered(key: "g1") {} else { Issue.record("expected absent") }
        #expect(b.deleteRegistered(key: "g1") == .absent)
        #expect(a.registered(key: "../../etc").value == nil)
    }

    @Test func badDataUnderOurPrefixIsACleanErrorForThatID() throws {
        let redis = try RedisServer()
        let (service, store) = replica(redis)
        defer { store.client.close() }
        let good = try #require(post(service, request).header("X-Graph-Id"))
        let bad = EvaluationID.random(), truncated = EvaluationID.random(), foreign = EvaluationID.random()
        try redis.send("SET", "micrograd:v1:eval:\(bad)", "not a graph")
        let value = GraphCodec.encode(try evaluated())
        _ = try store.client.command([Array("SET".utf8), Array("micrograd:v1:eval:\(truncated)".utf8), Array(value.dropLast(5))])
        try redis.send("RPUSH", "micrograd:v1:eval:\(foreign)", "a list")
        try redis.send("RPUSH", "micrograd:v1:graph:listed", "a list")
        for id in [bad, truncated, foreign] {
            let response = get(service, "/graph.json", id: id)
            #expect(response.status == 503, "\(text(response))")
            #expect(text(response).contains("/problems/store-unavailable"))
        }
        if case .unavailable = store.registered(key: "listed") {} else { Issue.record("a foreign type must be unavailable") }
        #expect(get(service, "/graph.json", id: good).status == 200)  // the store is fine for everything else
        #expect(store.client.state == .available)
    }

    @Test func redisDownAnswersEvaluationsWithoutIDAndReadsWith503UntilItReturns() throws {
        let redis = try RedisServer()
        let (service, store) = replica(redis)
        defer { store.client.close() }
        let id = try #require(post(service, request).header("X-Graph-Id"))

        redis.stop()
        let clock = ContinuousClock()
        for attempt in 0..<5 {
            let started = clock.now
            let answer = post(service, request)
            #expect(answer.status == 200)
            #expect(answer.header("X-Graph-Id") == nil && !text(answer).contains(#""id":"\#(id)""#))
            #expect(text(answer).hasPrefix(#"{"output":"t""#))
            #expect(answer.header("Graph-Not-Stored") == "store-unavailable")
            if attempt > 0 { #expect(clock.now - started < .milliseconds(50)) }  // skipped, not waited for
        }
        for path in ["/graph.json", "/graph.dot"] {
            for read in [get(service, path, id: id), get(service, path)] {
                #expect(read.status == 503)
                #expect(read.header("Retry-After") == "1")
            }
        }
        #expect(store.deleteEvaluation(id: id) != .absent)
        if case .notStored(.unavailable) = store.register(try evaluated().spec, key: "g") {} else { Issue.record("register") }
        #expect(get(service, "/healthz").status == 200)
        #expect(get(service, "/readyz").status == 200)
        let metrics = text(get(service, "/metrics"))
        #expect(metrics.contains(#"graph_store_up{store="redis"} 0"#))
        #expect(metrics.contains(#"graph_store_outages_total{store="redis"} 1"#))

        try redis.start()
        let back = clock.now
        while post(service, request).header("X-Graph-Id") == nil, clock.now - back < .seconds(5) { usleep(20_000) }
        let recovery = clock.now - back
        print("redis store: stored again \(recovery) after redis-server answered")
        #expect(recovery < .seconds(2))
        #expect(text(get(service, "/metrics")).contains(#"graph_store_up{store="redis"} 1"#))
    }

    @Test func aSlowRedisCostsOneTimeoutThenIsSkipped() throws {
        let redis = try RedisServer()
        let (service, store) = replica(redis, timeout: .milliseconds(200))
        defer { store.client.close() }
        #expect(post(service, request).header("X-Graph-Id") != nil)
        redis.sendInBackground("DEBUG", "SLEEP", "1.5")
        usleep(100_000)
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<20 {
            let answer = post(service, request)
            #expect(answer.status == 200 && answer.header("Graph-Not-Stored") == "store-unavailable")
        }
        #expect(clock.now - started < .milliseconds(900))  // one timeout (200 ms), then skips
        while post(service, request).header("X-Graph-Id") == nil, clock.now - started < .seconds(6) { usleep(20_000) }
        #expect(post(service, request).header("X-Graph-Id") != nil)
    }

    @Test func maxmemoryRefusalIsStoreFullAndTheAnswerStillComes() throws {
        let redis = try RedisServer(arguments: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
        let (service, store) = replica(redis)
        defer { store.client.close() }
        var refused: HTTPResponse?
        for _ in 0..<40 where refused == nil {  // ~300 KB each: well past 3 MB within the bound
            let answer = post(service, chain(8_000))
            #expect(answer.status == 200)
            if answer.header("Graph-Not-Stored") != nil { refused = answer }
        }
        #expect(refused?.header("Graph-Not-Stored") == "store-full")
        #expect(refused?.header("X-Graph-Id") == nil)
        let spec = try evaluated(chain(8_000)).spec
        var registration = StoreRegistration.created
        for index in 0..<40 where registration == .created { registration = store.register(spec, key: "full-\(index)") }
        #expect(registration == .notStored(.full))
        #expect(store.client.state == .available)
    }

    /// `appendfsync always`: what was acknowledged is on disk before the answer, so kill -9 loses none of it.
    @Test func acknowledgedWritesSurviveKill9WithAppendfsyncAlways() throws {
        let redis = try RedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let (service, store) = replica(redis)
        defer { store.client.close() }
        let spec = try evaluated(chain(100)).spec
        var keys: [String] = []
        var ids: [String] = []
        for index in 0..<20 {
            #expect(store.register(spec, key: "durable-\(index)") == .created)
            keys.append("durable-\(index)")
            ids.append(try #require(post(service, request).header("X-Graph-Id")))
        }
        redis.kill9()
        try redis.start()
        // A new replica (a restarted one): nothing in its memory.
        let (fresh, freshStore) = replica(redis)
        defer { freshStore.client.close() }
        for key in keys { #expect(freshStore.registered(key: key).value == spec, "\(key)") }
        for id in ids { #expect(get(fresh, "/graph.json", id: id).status == 200, "\(id)") }
    }
}

/// POST/GET/DELETE /graphs through two services sharing one real redis-server.
@Suite struct RedisRegisteredGraphTests {
    private func replica(_ redis: RedisServer) -> (GraphService, RedisGraphStore) {
        let store = RedisGraphStore(configuration: redis.configuration(commandTimeout: .milliseconds(300), probeInterval: .milliseconds(250)))
        return (GraphService(store: store), store)
    }

    private func call(_ service: GraphService, _ method: String, _ path: String, _ body: String = "") -> HTTPResponse {
        service.respond(to: HTTPRequest(
            method: method, path: path, headers: body.isEmpty ? [] : [("Content-Type", "application/json")], body: Array(body.utf8)))
    }

    @Test func registrationsAreSharedDeletedEverywhereAnd503WhileRedisIsDown() throws {
        let redis = try RedisServer()
        let (a, storeA) = replica(redis)
        let (b, storeB) = replica(redis)
        defer { storeA.client.close(); storeB.client.close() }
        let created = call(a, "POST", "/graphs", request)
        #expect(created.status == 201, "\(text(created))")
        let location = try #require(created.header("Location"))
        #expect(call(b, "POST", "/graphs", request).status == 200)  // same content, same gid, on another replica
        #expect(call(b, "GET", location).status == 200)
        let single = call(b, "POST", location + "/evaluate", #"{"values":{"a":1}}"#)
        #expect(single.status == 200 && single.header("X-Graph-Id") != nil)
        #expect(call(a, "DELETE", location).status == 204)
        #expect(call(b, "GET", location).status == 404)  // no replica caches it: the delete is seen at once

        #expect(call(a, "POST", "/graphs", request).status == 201)
        redis.stop()
        for response in [call(a, "POST", "/graphs", request), call(b, "GET", location), call(b, "DELETE", location),
                         call(b, "POST", location + "/evaluate", #"{"values":{"a":1}}"#)] {
            #expect(response.status == 503, "\(text(response))")
            #expect(response.header("Retry-After") == "1")
        }
        #expect(call(a, "GET", "/readyz").status == 200)
    }

    /// A registration answered 201 survives kill -9 of redis-server (appendfsync always) and a new replica.
    @Test func anAcknowledgedRegistrationSurvivesKill9AndANewReplica() throws {
        let redis = try RedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let (a, storeA) = replica(redis)
        defer { storeA.client.close() }
        var locations: [String] = []
        for index in 0..<10 {
            let created = call(a, "POST", "/graphs", request.replacingOccurrences(of: "10}", with: "\(index).5}"))
            #expect(created.status == 201)
            locations.append(try #require(created.header("Location")))
        }
        redis.kill9()
        try redis.start()
        let (fresh, freshStore) = replica(redis)
        defer { freshStore.client.close() }
        for location in locations { #expect(call(fresh, "GET", location).status == 200, "\(location)") }
    }
}
