import Foundation
import HTTPServer
import HTTPTesting
import Testing

@Suite struct ConcurrencyTests {
    /// 64 clients, each on its own keep-alive connection, 100 requests each; every answer must be the one asked for.
    @Test func sixtyFourClientsTimesOneHundredRequests() throws {
        let clients = 64
        let requestsPerClient = 100
        let handler: HTTPServer.Handler = { request in
            let client = request.queryValue("client") ?? "?"
            let sequence = request.queryValue("n") ?? "?"
            let text = "client \(client) request \(sequence) body \(String(decoding: request.body, as: UTF8.self))"
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array(text.utf8))
        }
        try withServer(handler: handler) { server in
            let port = server.port
            let correct = Shared(0)
            let failures = Shared<[String]>([])
            onThreads(clients) { client in
                do {
                    let connection = try TestConnection(port: port, timeoutSeconds: 30)
                    for sequence in 0..<requestsPerClient {
                        let payload = "p\(client * 1000 + sequence)"
                        let response = try connection.request(
                            sequence % 2 == 0 ? "GET" : "POST", "/work?client=\(client)&n=\(sequence)",
                            body: sequence % 2 == 0 ? [] : Array(payload.utf8))
                        let expected = "client \(client) request \(sequence) body \(sequence % 2 == 0 ? "" : payload)"
                        if response.status == 200 && response.text == expected {
                            correct.withLock { $0 += 1 }
                        } else {
                            failures.withLock { $0.append("client \(client) #\(sequence): \(response.status) \(response.text)") }
                        }
                    }
                } catch {
                    failures.withLock { $0.append("client \(client): \(error)") }
                }
            }
            #expect(failures.current.isEmpty, "\(failures.current.prefix(5))")
            #expect(correct.current == clients * requestsPerClient)
        }
    }
}
