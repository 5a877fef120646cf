import Foundation
import Testing

@testable import MicrogradGraph

/// Small requests reuse their thread's decoder buffers: whatever came before (a failure, a bigger graph, ids that
/// collide with the next request's), a request decodes exactly as it does on a fresh thread.
@Suite struct DecoderReuseTests {
    static let requests = [
        #"{"nodes":[{"id":"a","value":2.0},{"id":"b","value":-3.0},{"id":"e","op":"mul","inputs":["a","b"]}]}"#,
        #"{"nodes":[{"id":"b","value":1},{"id":"a","op":"tanh","inputs":["b"]}],"output":"a"}"#,
        #"{"nodes":[{"id":"x","value":1},{"id":"y","op":"pow","inputs":["x"],"exponent":3},{"id":"z","op":"add","inputs":["y",2]}]}"#,
        #"{"expression":"a*b+c","values":{"a":1,"b":2,"c":3}}"#,
        #"{"nodes":[{"id":"a","value":1},{"id":"a","value":2}]}"#,  // duplicate id: a 422
        #"{"nodes":[{"id":"a","op":"add","inputs":["q","a"]}]}"#,  // unknown id
        #"{"nodes":[{"id":"a","value":1}"#,  // malformed
        "{\"nodes\":[" + (0..<300).map { #"{"id":"n\#($0)","value":\#($0)}"# }.joined(separator: ",") + "]}",
    ]

    @Test func everyRequestDecodesAsOnAFreshThread() throws {
        // Fresh: each request alone on a new thread (its first decode there).
        var fresh: [Result<GraphSpec, Problem>] = []
        for body in Self.requests {
            let result = FreshResult()
            let done = DispatchSemaphore(value: 0)
            Thread {
                result.value = Result { () throws(Problem) in try decode(body) }
                done.signal()
            }.start()
            done.wait()
            fresh.append(try #require(result.value))
        }
        // Reused: all of them, in several orders, on one thread.
        let orders = [Array(Self.requests.indices), Array(Self.requests.indices.reversed()), [4, 0, 7, 1, 6, 2, 5, 3, 0, 0]]
        for order in orders {
            for index in order {
                let again = Result { () throws(Problem) in try decode(Self.requests[index]) }
                switch (fresh[index], again) {
                case let (.success(a), .success(b)): #expect(a == b, "request \(index)")
                case let (.failure(a), .failure(b)): #expect(a == b, "request \(index)")
                default: Issue.record("request \(index): \(fresh[index]) then \(again)")
                }
            }
        }
    }
}

/// Handed from the decoding thread to the test (the semaphore orders the accesses).
private final class FreshResult: @unchecked Sendable {
    var value: Result<GraphSpec, Problem>?
}
