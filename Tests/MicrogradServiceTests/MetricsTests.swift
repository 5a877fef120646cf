import Foundation
import HTTPServer
import HTTPTesting
import MicrogradService
import Testing

/// Metrics are counted per thread and summed at scrape time: the sums must be exact, whatever the threads.
@Suite struct MetricsTests {
    @Test func countsAreExactUnderConcurrency() throws {
        let metrics = ServiceMetrics()
        let threads = 16, perThread = 2_000
        let group = DispatchGroup()
        for index in 0..<threads {
            group.enter()
            Thread {
                for n in 0..<perThread {
                    metrics.recordRequest(route: "/healthz", method: "GET", status: n % 4 == 0 ? 503 : 200,
                                          duration: .microseconds(n % 300))
                    if index % 2 == 0 { metrics.recordGraph(nodes: n % 20) }
                }
                group.leave()
            }.start()
        }
        group.wait()
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let total = threads * perThread
        #expect(text.contains(#"http_requests_total{method="GET",route="/healthz",status="200"} \#(total * 3 / 4)"#))
        #expect(text.contains(#"http_requests_total{method="GET",route="/healthz",status="503"} \#(total / 4)"#))
        #expect(text.contains(#"http_request_duration_seconds_count{route="/healthz"} \#(total)"#))
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} \#(total)"#))
        // The first bucket (le 100 us) holds the durations of 0...100 us.
        let fast = (0..<perThread).filter { $0 % 300 <= 100 }.count * threads
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/healthz",le="0.0001"} \#(fast)"#))
        #expect(text.contains("graph_nodes_count \(threads / 2 * perThread)"))
        // The exact sum of the durations: each thread records 0...299 us cyclically.
        let perThreadMicros = (0..<perThread).reduce(0) { $0 + $1 % 300 }
        let sumSeconds = Double(perThreadMicros * threads) / 1e6
        let sumLine = text.split(separator: "\n").first { $0.hasPrefix(#"http_request_duration_seconds_sum{route="/healthz"}"#) }
        #expect(sumLine.flatMap { Double($0.split(separator: " ").last!) } == sumSeconds)
    }

    @Test func bucketsMatchThePrometheusLibrarysText() throws {
        let metrics = ServiceMetrics()
        metrics.recordRequest(route: "/evaluate", method: "POST", status: 200, duration: .microseconds(185))
        metrics.recordGraph(nodes: 3)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains("# TYPE http_requests_total counter\n"))
        #expect(text.contains("# TYPE http_request_duration_seconds histogram\n"))
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/evaluate",le="0.0001"} 0"#))
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/evaluate",le="0.00025"} 1"#))
        #expect(text.contains(#"http_request_duration_seconds_bucket{route="/evaluate",le="1.0"} 1"#))
        #expect(text.contains(#"http_request_duration_seconds_sum{route="/evaluate"} 0.000185"#))
        #expect(text.contains(#"graph_nodes_bucket{le="1.0"} 0"#))
        #expect(text.contains(#"graph_nodes_bucket{le="10.0"} 1"#))
        #expect(text.contains("graph_nodes_sum 3.0\ngraph_nodes_count 1\n"))
    }

    @Test func twoServicesNeverMixTheirCounts() {
        let first = ServiceMetrics(), second = ServiceMetrics()
        for _ in 0..<3 { first.recordRequest(route: "/a", method: "GET", status: 200, duration: .zero) }
        second.recordRequest(route: "/a", method: "GET", status: 200, duration: .zero)
        #expect(String(decoding: first.exposition(), as: UTF8.self).contains(#"route="/a",status="200"} 3"#))
        #expect(String(decoding: second.exposition(), as: UTF8.self).contains(#"route="/a",status="200"} 1"#))
    }

    /// Through the server: every request counted once, from both worker threads and many connections.
    @Test func everyRequestServedIsCountedOnce() throws {
        try withService { port, _ in
            let clients = 8, perClient = 100
            let failures = LockedCount()
            let group = DispatchGroup()
            for _ in 0..<clients {
                group.enter()
                Thread {
                    do {
                        let connection = try TestConnection(port: port)
                        for _ in 0..<perClient where try connection.request("GET", "/healthz").status != 200 {
                            failures.add()
                        }
                    } catch {
                        failures.add()
                    }
                    group.leave()
                }.start()
            }
            group.wait()
            #expect(failures.value == 0)
            let text = try send(port, "GET", "/metrics").text
            #expect(text.contains(#"http_requests_total{method="GET",route="/healthz",status="200"} \#(clients * perClient)"#))
            #expect(text.contains(#"http_request_duration_seconds_count{route="/healthz"} \#(clients * perClient)"#))
        }
    }
}

private final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
