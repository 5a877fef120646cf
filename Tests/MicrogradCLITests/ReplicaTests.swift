import Foundation
import HTTPTesting
import RedisTesting
import Synchronization
import Testing

/// Two `micrograd serve` processes sharing one real redis-server, as two replicas of a deployment do.
@Suite("replicas sharing Redis", .serialized)
struct ReplicaTests {
    final class Replica {
        let process: Process
        let port: Int
        init(redis: RedisServer, environment: [String: String] = [:]) throws {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--threads", "2",
                                 "--store", redis.url, "--store-timeout", "300"]
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            DispatchQueue.global().asyncAfter(deadline: .now() + 20) { if process.isRunning { process.terminate() } }
            var log = ""
            var found: Int?
            while found == nil {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                log += String(decoding: chunk, as: UTF8.self)
                if let range = log.range(of: #"port=(\d+)"#, options: .regularExpression) {
                    found = Int(log[range].dropFirst("port=".count))
                }
            }
            guard let found else {
                process.terminate()
                throw CLIFailure("the replica did not log its port: \(log)")
            }
            // Keep draining its log so a full pipe never blocks it.
            Thread.detachNewThread { while !output.fileHandleForReading.availableData.isEmpty {} }
            self.process = process
            self.port = found
        }

        deinit {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }

        func post(_ body: String) throws -> RawResponse { try ReplicaTests.post(port, body) }
        func get(_ target: String) throws -> RawResponse { try ReplicaTests.get(port, target) }
    }

    static func post(_ port: Int, _ body: String) throws -> RawResponse {
        try TestConnection(port: port).request(
            "POST", "/evaluate", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
    }

    static func get(_ port: Int, _ target: String) throws -> RawResponse {
        try TestConnection(port: port).request("GET", target)
    }

    /// An evaluation's answer waits for Redis without holding its worker (a deferred answer), so with Redis the
    /// default is the memory store's (cores); `--threads`/`THREADS` still win.
    @Test func withRedisTheDefaultWorkerCountIsTheCores() throws {
        let redis = try RedisServer()
        let local = ["--host", "127.0.0.1", "--port", "0"]
        let memory = try ServeProcess(arguments: local)
        defer { memory.stop() }
        let cores = try #require(setting("threads", in: memory.startupLine).flatMap(Int.init))
        memory.stop()
        let shared = try ServeProcess(arguments: local + ["--store", redis.url])
        defer { shared.stop() }
        #expect(setting("threads", in: shared.startupLine) == "\(cores)")
        shared.stop()
        let chosen = try ServeProcess(arguments: local, environment: ["STORE": redis.url, "THREADS": "3"])
        defer { chosen.stop() }
        #expect(setting("threads", in: chosen.startupLine) == "3")
    }

    /// With `appendfsync always` nothing acknowledged is lost to the kill -9, so every acknowledged id must be found
    /// again once Redis is back: a 404 would be a lost write or a wrong answer.
    @Test func anIDMintedOnOneReplicaIsReadOnTheOtherAndOutagesAre503NeverWrong404s() throws {
        let redis = try RedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let a = try Replica(redis: redis), b = try Replica(redis: redis)
        let answer = try a.post(seedGraph)
        #expect(answer.status == 200)
        let id = try #require(answer.header("X-Graph-Id"))
        let read = try b.get("/graph.json?id=\(id)")
        #expect(read.status == 200 && read.text.contains(id))
        #expect(try b.get("/graph.dot").status == 200)

        // Load on both replicas while Redis is killed and restarted: evaluations always answer 200; a read of an id
        // either replica acknowledged is 200 or 503 (Retry-After), never 404.
        let acknowledged = Mutex<[String]>([id])
        let statuses = Mutex<[Int: Int]>([:])
        let stop = Atomic(false)
        let group = DispatchGroup()
        let ports = [a.port, b.port]
        for index in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var round = 0
                while !stop.load(ordering: .relaxed), round < 5_000 {
                    round += 1
                    guard let posted = try? Self.post(ports[index], seedGraph) else { continue }
                    statuses.withLock { $0[posted.status, default: 0] += 1 }
                    if let minted = posted.header("X-Graph-Id") { acknowledged.withLock { $0.append(minted) } }
                    let known = acknowledged.withLock { $0[($0.count - 1 - index) % $0.count] }
                    guard let read = try? Self.get(ports[(index + 1) % 2], "/graph.json?id=\(known)") else { continue }
                    statuses.withLock { $0[read.status * 10, default: 0] += 1 }  // reads counted as status x 10
                    if read.status == 503 { #expect(read.header("Retry-After") != nil) }
                }
            }
        }
        usleep(300_000)
        redis.kill9()
        usleep(800_000)
        #expect(try a.get("/healthz").status == 200)
        #expect(try b.get("/readyz").status == 200)
        #expect(try a.get("/metrics").text.contains(#"graph_store_up{store="redis"} 0"#))
        try redis.start()
        let back = ContinuousClock.now
        var recovered: Duration?
        while recovered == nil, ContinuousClock.now - back < .seconds(5) {
            if let answer = try? a.post(seedGraph), answer.header("X-Graph-Id") != nil { recovered = .now - back }
            else { usleep(20_000) }
        }
        usleep(300_000)
        stop.store(true, ordering: .relaxed)
        #expect(group.wait(timeout: .now() + 30) == .success)
        let counts = statuses.withLock { $0 }
        print("replicas under kill -9 and restart of redis: \(counts.sorted { $0.key < $1.key }); recovered after \(recovered.map { "\($0)" } ?? "never")")
        #expect(recovered.map { $0 < .seconds(2) } == true)
        #expect(Set(counts.keys).isSubset(of: [200, 2000, 5030]), "POST only 200; reads 200 or 503, never 404")
        #expect(counts[5030, default: 0] > 0)  // the outage was seen
        let last = try #require(acknowledged.withLock { $0.last })
        #expect(try a.get("/graph.json?id=\(last)").status == 200)
        #expect(try b.get("/graph.json?id=\(last)").status == 200)
    }

    @Test func aBadStoreURLIsAUsageError() throws {
        let result = try run(["serve", "--port", "0", "--store", "rediss://host:1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--store"))
        let fromEnvironment = try run(["serve", "--port", "0"], environment: ["STORE": "redis://host:99999"])
        #expect(fromEnvironment.status != 0)
        #expect(fromEnvironment.stderr.contains("port must be 1-65535"))
    }
}
