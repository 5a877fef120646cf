/// Where Redis is and how long to wait for it.
public struct RedisConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Redis 6 ACL user; nil = the default user (`AUTH password`).
    public var username: String?
    public var password: String?
    public var database: Int
    /// Bounds the TCP connect (hiredis' own connect timeout).
    public var connectTimeout: Duration
    /// Bounds each read and write of a command (hiredis' socket timeout).
    public var commandTimeout: Duration
    /// How often an open circuit breaker tries Redis again in the background.
    public var probeInterval: Duration
    /// Idle connections kept for reuse; more are opened when more threads need one at once.
    public var maxIdleConnections: Int

    public static let defaultConnectTimeout = Duration.milliseconds(250)
    public static let defaultCommandTimeout = Duration.milliseconds(500)
    public static let defaultProbeInterval = Duration.milliseconds(250)

    public init(
        host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0,
        connectTimeout: Duration = defaultConnectTimeout, commandTimeout: Duration = defaultCommandTimeout,
        probeInterval: Duration = defaultProbeInterval, maxIdleConnections: Int = 16
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.probeInterval = probeInterval
        self.maxIdleConnections = maxIdleConnections
    }

    /// Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (IPv6 hosts in brackets; user and password percent-decoded).
    public init(url: String) throws(RedisURLError) {
        let prefix = "redis://"
        guard url.hasPrefix(prefix) else {
            if url.hasPrefix("rediss://") { throw RedisURLError("rediss:// (TLS) is not supported; use redis://") }
            throw RedisURLError("expected redis://[:PASSWORD@]HOST:PORT[/DB], got \(url.debugDescription)")
        }
        var rest = Substring(url.dropFirst(prefix.count))
        if rest.contains("?") || rest.contains("#") { throw RedisURLError("query and fragment are not supported") }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userinfo[..<colon])
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userinfo[userinfo.index(after: colon)...])
            } else {
                // `redis://secret@host` is how some clients write a password alone.
                password = try Self.percentDecoded(userinfo)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard path.allSatisfy({ $0.isASCII && $0.isNumber }), path.count <= 5, let db = Int(path) else {
                    throw RedisURLError("database must be a number, got \(String(path).debugDescription)")
                }
                database = db
            }
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw RedisURLError("unclosed [ in host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw RedisURLError("expected :PORT after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw RedisURLError("missing host") }
        var port = 6379
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(portText), (1...65535).contains(value)
            else { throw RedisURLError("port must be 1-65535, got \(String(portText).debugDescription)") }
            port = value
        }
        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// The URL without the password, for logs.
    public var redactedURL: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "redis://\(auth)\(host):\(port)/\(database)"
    }

    private static func percentDecoded(_ text: Substring) throws(RedisURLError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard iterator.count >= 2, let high = hex(iterator.removeFirst()), let low = hex(iterator.removeFirst()) else {
                    throw RedisURLError("bad percent-escape in user info")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

public struct RedisURLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
