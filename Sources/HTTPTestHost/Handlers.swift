import HTTPServer
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum TestHostRoutes {
    static let router: Router = {
        var router = Router()
        router.get("/hello") { _ in HTTPResponse.plainText(status: 200, "hello\n") }
        // Announces itself on stdout, then holds the request until a line arrives on stdin (or stdin closes,
        // so a test that died cannot leave it waiting): the test decides when it finishes, no clock involved.
        router.get("/gate") { request in
            writeLine("BEGIN \(request.queryValue("tag") ?? "-")")
            _ = readLine()
            return HTTPResponse.plainText(status: 200, "released\n")
        }
        return router
    }()
}

/// Writes one line to stdout unbuffered (stdout is a pipe in the test; buffered output would arrive late).
func writeLine(_ text: String) {
    let line = Array((text + "\n").utf8)
    line.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
