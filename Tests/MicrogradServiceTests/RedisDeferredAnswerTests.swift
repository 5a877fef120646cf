import Foundation
import HTTPServer
import HTTPTesting
import MicrogradService
import RedisClient
import RedisTesting
import Testing

/// With Redis an evaluation's answer waits for its write without holding a worker thread: the connection is
/// suspended until Redis acknowledges (then the answer carries the id) or the write fails (no id, a reason).
@Suite struct RedisDeferredAnswerTests {
    private let seed = #"{"nodes":[{"id":"a","value":2},{"id":"b","value":-3},{"id":"d","op":"mul","inputs":["a","b"]}]}"#

    private func serve(_ redis: RedisServer, threads: Int, timeout: Duration) throws -> ServingGraphService {
        var configuration = ServiceConfiguration()
        configuration.server.host = "127.0.0.1"
        configuration.server.port = 0
        configuration.server.threads = threads
        var redisConfiguration = redis.configuration(commandTimeout: timeout, probeInterval: .milliseconds(100))
        redisConfiguration.connectTimeout = .milliseconds(250)
        return try GraphService.serve(
            configuration: configuration, store: RedisGraphStore(configuration: redisConfiguration), logger: silentLogger)
    }

    /// POSTs `body` from another thread; `sent` (if given) is signalled once the request is written.
    private func postInBackground(
        _ port: Int, _ body: String, sent: DispatchSemaphore? = nil
    ) -> (Shared<Result<RawResponse, any Error>?>, DispatchSemaphore) {
        let result = Shared<Result<RawResponse, any Error>?>(nil), done = DispatchSemaphore(value: 0)
        Thread {
            let answer = Result { () throws -> RawResponse in
                let connection = try TestConnection(port: port, timeoutSeconds: 30)
                try connection.sendRequest(
                    "POST", "/evaluate", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
                sent?.signal()
                return try connection.readResponse()
            }
            result.withLock { $0 = answer }
            done.signal()
        }.start()
        return (result, done)
    }

    @Test func anEvaluationWaitingForRedisHoldsNoWorkerAndGetsItsIDOnceAcknowledged() throws {
        let redis = try RedisServer()
        // Redis sleeps 3 s, well inside the 5 s command timeout: wide margins, so a loaded machine (a parallel
        // test run) does not turn its scheduling delays into a failure.
        let running = try serve(redis, threads: 1, timeout: .seconds(5))
        defer { running.shutdown(gracePeriod: .seconds(2)) }
        let port = running.port
        // Warm: the writer thread and a connection exist.
        #expect(try postJSON(port, "/evaluate", seed).header("X-Graph-Id") != nil)

        redis.sendInBackground("DEBUG", "SLEEP", "3")
        usleep(300_000)
        let started = Date()
        let (pending, done) = postInBackground(port, seed)
        usleep(100_000)
        // The one worker answers others while the evaluation waits for Redis.
        let health = try TestConnection(port: port).request("GET", "/healthz")
        #expect(health.status == 200)
        #expect(done.wait(timeout: .now()) == .timedOut, "the evaluation was answered before Redis woke")
        #expect(Date().timeIntervalSince(started) < 2.0, "the worker waited for Redis")
        #expect(done.wait(timeout: .now() + 10) == .success)
        let answer = try #require(try pending.withLock { $0 }?.get())
        #expect(answer.status == 200)
        #expect(Date().timeIntervalSince(started) >= 2.0)  // answered only after Redis acknowledged
        let id = try #require(answer.header("X-Graph-Id"))
        #expect(answer.header("Graph-Not-Stored") == nil)
        // Acknowledged means stored: read it through a second replica at once.
        let other = try serve(redis, threads: 1, timeout: .seconds(2))
        defer { other.shutdown(gracePeriod: .seconds(2)) }
        #expect(try TestConnection(port: other.port).request("GET", "/graph.json?id=\(id)").status == 200)
    }

    @Test func aStopWhileEvaluationsWaitForRedisAnswersEveryOneWithinTheRedisTimeout() throws {
        let redis = try RedisServer()
        let running = try serve(redis, threads: 2, timeout: .milliseconds(300))
        let port = running.port
        #expect(try postJSON(port, "/evaluate", seed).header("X-Graph-Id") != nil)

        redis.sendInBackground("DEBUG", "SLEEP", "2")
        usleep(100_000)
        let sent = DispatchSemaphore(value: 0)
        let posts = (0..<8).map { _ in postInBackground(port, seed, sent: sent) }
        for _ in posts { #expect(sent.wait(timeout: .now() + 10) == .success) }
        usleep(50_000)
        let started = Date()
        running.shutdown(gracePeriod: .seconds(20))
        let took = Date().timeIntervalSince(started)
        // Bounded by Redis's command timeout (300 ms), not by the grace period or by Redis's sleep.
        #expect(took < 1.5, "the stop took \(took) s")
        for (result, done) in posts {
            #expect(done.wait(timeout: .now() + 10) == .success)
            let answer = try #require(try result.withLock { $0 }?.get())
            #expect(answer.status == 200)
            #expect(answer.header("X-Graph-Id") == nil)
            #expect(answer.header("Graph-Not-Stored") == "store-unavailable")
            #expect(answer.header("Connection")?.lowercased() == "close")
            #expect(answer.text.contains(#""output":"d""#))
        }
    }

    @Test func inProcessCallersGetTheAnswerAfterTheWrite() throws {
        let redis = try RedisServer()
        let store = RedisGraphStore(configuration: redis.configuration())
        defer { store.client.close() }
        let service = GraphService(store: store)
        let request = HTTPRequest(
            method: "POST", path: "/evaluate", headers: [("Content-Type", "application/json")], body: Array(seed.utf8))
        let deferred = service.answer(to: request)
        #expect(deferred.deferred != nil)
        let answer = deferred.resolved()
        let id = try #require(answer.header("X-Graph-Id"))
        #expect(store.evaluation(id: id).value != nil)
        #expect(String(decoding: service.respond(to: request).body, as: UTF8.self).contains(#""id":""#))
        let metrics = String(decoding: service.respond(to: HTTPRequest(method: "GET", path: "/metrics")).body, as: UTF8.self)
        #expect(metrics.contains(#"http_requests_total{method="POST",route="/evaluate",status="200"} 2"#))
    }
}
