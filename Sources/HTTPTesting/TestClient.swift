// HTTPTesting: a deliberately small HTTP/1.1 client over POSIX sockets, so tests control exactly what goes on the wire
// (chunking, stalling, pipelining, silence). Every read has a receive timeout: no test can hang.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum TestClientError: Error, CustomStringConvertible {
    case connectFailed(Int32)
    case sendFailed(Int32)
    case timedOut
    case closedByPeer
    case malformed(String)

    public var description: String {
        switch self {
        case .connectFailed(let code): "connect failed: \(String(cString: strerror(code)))"
        case .sendFailed(let code): "send failed: \(String(cString: strerror(code)))"
        case .timedOut: "timed out waiting for the server"
        case .closedByPeer: "the server closed the connection"
        case .malformed(let why): "malformed response: \(why)"
        }
    }
}

public struct RawResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

public final class TestConnection {
    public let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; reads give up after `timeoutSeconds`.
    public init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            // No close here: a class whose init throws after every property is set still runs deinit, which closes
            // fd. Closing twice would close whatever descriptor another thread opened in between.
            throw TestClientError.connectFailed(errno)
        }
    }

    deinit { Glibc.close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 { throw TestClientError.sendFailed(errno) }
            offset += written
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Sends a complete request with Host and (when there is a body) Content-Length.
    public func sendRequest(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws {
        try send(requestHead(method, target, headers: headers, contentLength: body.isEmpty ? nil : body.count) + body)
    }

    public func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> RawResponse {
        try sendRequest(method, target, headers: headers, body: body)
        return try readResponse(isHead: method == "HEAD")
    }

    /// Reads one response; a HEAD response has no body whatever its Content-Length says.
    public func readResponse(isHead: Bool = false) throws -> RawResponse {
        let headEnd = try readUntil(Array("\r\n\r\n".utf8))
        let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
        buffer.removeFirst(headEnd + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw TestClientError.malformed("status line \(head.prefix(80))")
        }
        let headers = try lines.map { line -> (name: String, value: String) in
            guard let colon = line.firstIndex(of: ":") else { throw TestClientError.malformed("header \(line)") }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        if status == 100 { return response }
        if isHead || status == 204 || status == 304 { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            try fill(atLeast: length)
            response.body = Array(buffer[..<length])
            buffer.removeFirst(length)
        } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            throw TestClientError.malformed("chunked responses are not expected from this server")
        } else {
            response.body = buffer + readToEnd()
            buffer = []
        }
        return response
    }

    /// True when the server closes the connection (EOF or reset) before the receive timeout, false on timeout
    /// or if bytes arrive instead.
    public func waitForClose() -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        if count == 0 { return true }
        if count < 0 { return errno == ECONNRESET }
        return false
    }

    private func readToEnd() -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return result }
            result += chunk[..<count]
        }
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= marker.count {
                for start in searchFrom...(buffer.count - marker.count)
                where buffer[start..<start + marker.count].elementsEqual(marker) {
                    return start
                }
                searchFrom = buffer.count - marker.count + 1
            }
            try receiveMore()
        }
    }

    private func fill(atLeast count: Int) throws {
        while buffer.count < count { try receiveMore() }
    }

    private func receiveMore() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &chunk, chunk.count, 0)
        if count == 0 { throw TestClientError.closedByPeer }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw TestClientError.timedOut }
            if errno == ECONNRESET { throw TestClientError.closedByPeer }
            throw TestClientError.malformed("recv: \(String(cString: strerror(errno)))")
        }
        buffer += chunk[..<count]
    }
}

public func requestHead(_ method: String, _ target: String, headers: [(String, String)] = [], contentLength: Int?) -> [UInt8] {
    var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if let contentLength { text += "Content-Length: \(contentLength)\r\n" }
    text += "\r\n"
    return Array(text.utf8)
}

/// A chunked transfer-coding of `body` cut into `sizes` (cycled), with the terminating zero chunk.
public func chunkedEncoding(_ body: [UInt8], sizes: [Int]) -> [[UInt8]] {
    var pieces: [[UInt8]] = []
    var offset = 0
    var index = 0
    while offset < body.count {
        let size = min(sizes[index % sizes.count], body.count - offset)
        pieces.append(Array((String(size, radix: 16) + "\r\n").utf8) + body[offset..<offset + size] + Array("\r\n".utf8))
        offset += size
        index += 1
    }
    pieces.append(Array("0\r\n\r\n".utf8))
    return pieces
}

/// Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
public func patternBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
