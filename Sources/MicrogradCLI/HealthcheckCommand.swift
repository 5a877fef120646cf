import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `micrograd healthcheck`: exit 0 when the service answers 200, for a container HEALTHCHECK with no curl in the image.
struct HealthcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 if the service at --url answers 200, 1 otherwise.")

    @Option(help: "An http:// URL (numeric IPv4 host). Default: http://127.0.0.1:$PORT/healthz, PORT defaulting to 8080.")
    var url: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 3

    func run() throws {
        let port = EnvironmentDefault.environment("PORT") ?? "8080"
        let target = url ?? "http://127.0.0.1:\(port)/healthz"
        guard let (host, portNumber, path) = Self.parse(target) else {
            throw ValidationError("--url must look like http://127.0.0.1:8080/healthz (got '\(target)').")
        }
        switch Self.status(host: host, port: portNumber, path: path, timeoutSeconds: timeout) {
        case .success(200):
            print("healthy: \(target) answered 200")
        case .success(let status):
            print("unhealthy: \(target) answered \(status)")
            throw ExitCode(1)
        case .failure(let error):
            print("unhealthy: \(target): \(error.description)")
            throw ExitCode(1)
        }
    }

    static func parse(_ url: String) -> (host: String, port: UInt16, path: String)? {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":", maxSplits: 1)
        guard let host = parts.first, !host.isEmpty else { return nil }
        let port = parts.count == 2 ? UInt16(parts[1]) : 80
        guard let port else { return nil }
        return (String(host), port, path.isEmpty ? "/" : String(path))
    }

    /// One `GET` over a plain socket; returns the status code.
    static func status(host: String, port: UInt16, path: String, timeoutSeconds: Int) -> Result<Int, CLIError> {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            return .failure(CLIError("'\(host)' is not a numeric IPv4 address"))
        }
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return .failure(CLIError("socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return .failure(CLIError("connect: \(String(cString: strerror(errno)))")) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress!, $0.count, 0) }) == request.count else {
            return .failure(CLIError("send: \(String(cString: strerror(errno)))"))
        }
        var reply = [UInt8](repeating: 0, count: 64)
        var received = 0
        while received < 12 {
            let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + received, $0.count - received, 0) }
            guard n > 0 else { return .failure(CLIError("no answer within \(timeoutSeconds) s")) }
            received += n
        }
        // "HTTP/1.1 200 OK": the status is bytes 9..<12.
        guard let status = Int(String(decoding: reply[9..<12], as: UTF8.self)) else {
            return .failure(CLIError("not an HTTP answer"))
        }
        return .success(status)
    }
}
