import HTTPServer
import HTTPTesting
import Testing

@Suite struct RouterTests {
    private func router() -> Router {
        var router = Router(
            notFound: { request in HTTPResponse(status: 404, body: Array("missing \(request.path)".utf8)) },
            methodNotAllowed: { request, allow in
                HTTPResponse(status: 405, body: Array("\(request.method) not in \(allow.joined(separator: ","))".utf8))
            })
        router.get("/a") { _ in HTTPResponse(status: 200, body: Array("get a".utf8)) }
        router.post("/a") { request in HTTPResponse(status: 201, body: request.body) }
        router.post("/b") { _ in HTTPResponse(status: 202) }
        return router
    }

    @Test func dispatchesByMethodAndExactPath() {
        let router = router()
        #expect(router.respond(to: HTTPRequest(method: "GET", path: "/a")).body == Array("get a".utf8))
        #expect(router.respond(to: HTTPRequest(method: "POST", path: "/a", body: [1, 2])).status == 201)
        #expect(router.respond(to: HTTPRequest(method: "POST", path: "/b")).status == 202)
        #expect(router.respond(to: HTTPRequest(method: "GET", path: "/a/")).status == 404)  // no magic
    }

    @Test func laterRegistrationReplacesEarlier() {
        var router = router()
        router.get("/a") { _ in HTTPResponse(status: 203) }
        #expect(router.respond(to: HTTPRequest(method: "GET", path: "/a")).status == 203)
        #expect(router.allowedMethods(for: "/a") == ["GET", "HEAD", "POST"])
    }

    @Test func unknownPathGoesToNotFound() {
        let response = router().respond(to: HTTPRequest(method: "GET", path: "/nope"))
        #expect(response.status == 404)
        #expect(response.body == Array("missing /nope".utf8))
    }

    @Test func wrongMethodGets405WithAllow() {
        let response = router().respond(to: HTTPRequest(method: "DELETE", path: "/a"))
        #expect(response.status == 405)
        #expect(response.header("allow") == "GET, HEAD, POST")
        #expect(response.body == Array("DELETE not in GET,HEAD,POST".utf8))
        let postOnly = router().respond(to: HTTPRequest(method: "GET", path: "/b"))
        #expect(postOnly.header("Allow") == "POST")
        #expect(router().allowedMethods(for: "/zzz") == nil)
    }

    @Test func headIsServedByGet() {
        let router = router()
        let head = router.respond(to: HTTPRequest(method: "HEAD", path: "/a"))
        #expect(head.status == 200)
        // The body stays so the server can send GET's Content-Length; the server never writes a HEAD body.
        #expect(head.body == Array("get a".utf8))
        #expect(router.respond(to: HTTPRequest(method: "HEAD", path: "/b")).status == 405)
    }

    @Test func requestLookups() {
        let request = HTTPRequest(
            method: "GET", path: "/", query: [("a", "1"), ("b", ""), ("a", "2")],
            headers: [("Content-Type", "text/plain"), ("X-Thing", "x")])
        #expect(request.queryValue("a") == "1")
        #expect(request.queryValue("b") == "")
        #expect(request.queryValue("c") == nil)
        #expect(request.header("content-type") == "text/plain")
        #expect(request.header("X-THING") == "x")
        #expect(request.header("X-Thin") == nil)
        #expect(request.header("X-THINK") == nil)  // same length, one letter differs
        #expect(request.headers.map(\.name) == ["Content-Type", "X-Thing"])
        #expect(request.header("CONTENT-TYPE", satisfies: { $0.count == 10 }) == true)
        #expect(request.header("X-Thing", satisfies: { $0.first == UInt8(ascii: "y") }) == false)
        #expect(request.header("Accept", satisfies: { _ in true }) == nil)
        var changed = request
        changed.headers.append((name: "Accept", value: ""))
        #expect(changed.header("accept") == "")
        #expect(changed.headers.count == 3)
    }
}
