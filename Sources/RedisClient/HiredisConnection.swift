import CHiredis

#if canImport(Glibc)
import Glibc
#endif

/// hiredis 0.14 writes with plain `write()`: a peer that closed the socket would kill the process with SIGPIPE.
private let sigpipeIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// One blocking hiredis context: the only Swift that touches hiredis.
///
/// A context is not thread-safe and is unusable after any error (its stream may be mid-reply), so one thread at a time
/// owns it (``RedisClient`` hands it out and takes it back) and a failed one is dropped, never reused: a replacement is a
/// new connect, which sets the command timeout again (hiredis does not keep it across a reconnect).
final class HiredisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects within `connectTimeout`; every later command may wait at most `commandTimeout` per read or write.
    init(host: String, port: Int, connectTimeout: Duration, commandTimeout: Duration) throws(RedisError) {
        _ = sigpipeIgnored
        guard let context = redisConnectWithTimeout(host, Int32(clamping: port), timeval(connectTimeout)) else {
            throw RedisError(.connection, "cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let error = Self.error(of: context, during: "connect")
            redisFree(context)
            throw error
        }
        if redisSetTimeout(context, timeval(commandTimeout)) != REDIS_OK {
            let error = Self.error(of: context, during: "set timeout")
            redisFree(context)
            throw error
        }
        self.context = context
    }

    deinit { redisFree(context) }

    /// Sends every command of `parts` (in order) at once, then reads every reply: one round trip. Error replies come
    /// back as `.error`; a connection-level failure throws, and then this connection must be dropped.
    func pipeline(_ parts: [RedisCommands]) throws(RedisError) -> [RedisValue] {
        var expected = 0
        for part in parts where part.count > 0 {
            precondition(part.isComplete, "a command is missing arguments")
            // Already in Redis's wire format: hiredis only copies the bytes into its output buffer.
            let status = part.bytes.withUnsafeBytes { bytes in
                redisAppendFormattedCommand(context, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
            }
            if status != REDIS_OK { throw Self.error(of: context, during: "write") }
            expected += part.count
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(expected)
        for _ in 0..<expected {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
                throw Self.error(of: context, during: "read")
            }
            let typed = reply.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.value(of: typed))
            freeReplyObject(reply)
        }
        return replies
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        let raw = UnsafeRawBufferPointer(start: r.len > 0 ? r.str : nil, count: r.str == nil ? 0 : r.len)
        switch r.type {
        case chiredis_reply_string(): return .bulk(Array(raw))
        case chiredis_reply_integer(): return .integer(Int64(r.integer))
        case chiredis_reply_nil(): return .null
        // Decoded straight from hiredis' buffer: "+OK" on every write makes no array on the way.
        case chiredis_reply_status(): return .status(String(decoding: raw, as: UTF8.self))
        case chiredis_reply_error(): return .error(String(decoding: raw, as: UTF8.self))
        case chiredis_reply_array():
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] { elements.append(value(of: element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default: return .error("unknown reply type \(r.type)")
        }
    }

    private static func error(of context: UnsafeMutablePointer<redisContext>, during step: String) -> RedisError {
        let code = context.pointee.err
        let text = String(cString: chiredis_errstr(context))
        // A read or write past SO_RCVTIMEO/SO_SNDTIMEO fails with EAGAIN, which hiredis reports as an I/O error.
        if code == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || text.contains("temporarily unavailable")) {
            return RedisError(.timeout, "\(step) timed out")
        }
        if code == REDIS_ERR_PROTOCOL { return RedisError(.protocol, "\(step): \(text)") }
        return RedisError(.connection, "\(step): \(text.isEmpty ? "error \(code)" : text)")
    }
}

private func timeval(_ duration: Duration) -> timeval {
    let (seconds, attoseconds) = duration.components
    return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
}
