import HTTPServer

enum BenchRoutes {
    static let router: Router = {
        var router = Router()
        let body = Array("Hello, World!\n".utf8)
        router.get("/") { _ in
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: body)
        }
        // For timing large bodies by hand (curl --data-binary @file): answers with the request body.
        router.post("/echo") { request in
            HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")], body: request.body)
        }
        return router
    }()
}
