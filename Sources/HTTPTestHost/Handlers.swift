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
        // Sleeps ?ms=N milliseconds (at most 5 s) after announcing itself on stdout, so the test knows it is in flight.
        router.get("/slow") { request in
            let milliseconds = min(5000, max(0, Int(request.queryValue("ms") ?? "") ?? 0))
            writeLine("BEGIN \(request.queryValue("tag") ?? "-")")
            usleep(UInt32(milliseconds) * 1000)
            return HTTPResponse.plainText(status: 200, "slept \(milliseconds)\n")
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
