import CMicroHTTPD
import Logging

/// What the C callbacks reach through their `cls` pointer: configuration, handler and shared counters.
/// Immutable apart from `state`, which is thread-safe.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    let logger: Logger
    let handler: HTTPServer.Handler
    let errorResponder: HTTPServer.ErrorResponder
    let state = ServerState()
    /// Connections waiting for a deferred answer (DeferredResponse.swift).
    let suspensions: Suspensions
    /// Random per process, so ids from different runs or replicas do not collide; plus the thread's counter slot
    /// (ServerState) and its count, they are unique within one.
    let requestIDPrefix: UInt32
    /// Our `logger` copy is immutable, so whether it logs `.info` is fixed; checking a Bool per request is cheaper
    /// than asking the log handler (which copies the handler existential).
    let accessLogEnabled: Bool
    /// Where a finished access-log line goes: the sink, or else the logger. A closure made once: copying the
    /// optional existential out of the property for each line went through generic value witnesses.
    let writeAccessLine: @Sendable (UnsafeRawBufferPointer) -> Void
    /// The connection limit and open-connection count the C admission callback reads (shim.h); written only before
    /// the daemon starts, then only by C atomics. Outlives the daemon: freed with the core, after the server stopped.
    nonisolated(unsafe) let admission = UnsafeMutablePointer<mhd_shim_admission>.allocate(capacity: 1)

    init(
        configuration: ServerConfiguration, logger: Logger,
        handler: @escaping HTTPServer.Handler, errorResponder: @escaping HTTPServer.ErrorResponder,
        accessLog: (any AccessLogSink)?
    ) {
        if let accessLog {
            writeAccessLine = { accessLog.writeAccessLine($0) }
        } else {
            writeAccessLine = { [logger] line in
                // An explicit source: the default scans `#fileID` for its module on every call.
                logger.info("\(String(decoding: line, as: UTF8.self))", source: HTTPServer.accessLogSource)
            }
        }
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        self.errorResponder = errorResponder
        suspensions = Suspensions { why in errorResponder(503, why) }
        requestIDPrefix = UInt32.random(in: UInt32.min...UInt32.max)
        accessLogEnabled = logger.logLevel <= .info
        admission.initialize(to: mhd_shim_admission(limit: UInt32(configuration.connectionLimit), open: 0))
    }

    deinit { admission.deallocate() }

    /// The client's id when it is printable ASCII without spaces and at most 128 bytes, else a fresh one.
    func requestID(clientValue: String?, slot: UInt32, sequence: UInt64) -> String {
        if let value = clientValue, !value.isEmpty, value.utf8.count <= 128,
            value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return value
        }
        return generatedRequestID(prefix: requestIDPrefix &+ slot, sequence: sequence)
    }

    func logAccess(_ context: RequestContext, termination: MHD_RequestTerminationCode) {
        guard accessLogEnabled else { return }
        withAccessLine(context, termination: termination, writeAccessLine)
    }

    /// `METHOD /path STATUS bytes=N duration_us=N request_id=ID [outcome=...]`, assembled in a temporary buffer
    /// (on the stack for ordinary lines): the interpolated String cost ~6,600 instructions a request.
    private func withAccessLine(
        _ context: RequestContext, termination: MHD_RequestTerminationCode, _ body: (UnsafeRawBufferPointer) -> Void
    ) {
        let micros = (monotonicNanoseconds() &- context.startNanoseconds) / 1000
        let outcome: StaticString = termination == .REQUEST_TERMINATED_COMPLETED_OK ? "" : terminationName(termination)
        // Fixed text (" " x2, " bytes=", " duration_us=", " request_id=", " outcome=") is 43 bytes; 3 numbers <= 60.
        let bound = 103 + context.method.utf8.count + context.path.utf8.count + context.requestID.utf8.count
            + outcome.utf8CodeUnitCount
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { buffer in
            var line = LineWriter(buffer: buffer)
            line.append(context.method)
            line.appendLiteral(" ")
            line.append(context.path)
            line.appendLiteral(" ")
            line.append(UInt64(clamping: context.status))
            line.appendLiteral(" bytes=")
            line.append(UInt64(clamping: context.responseBytes))
            line.appendLiteral(" duration_us=")
            line.append(micros)
            line.appendLiteral(" request_id=")
            line.append(context.requestID)
            if outcome.utf8CodeUnitCount > 0 {
                line.appendLiteral(" outcome=")
                line.appendLiteral(outcome)
            }
            body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<line.count])))
        }
    }

    private func terminationName(_ code: MHD_RequestTerminationCode) -> StaticString {
        switch code {
        case .REQUEST_TERMINATED_WITH_ERROR: "error"
        case .REQUEST_TERMINATED_TIMEOUT_REACHED: "timeout"
        case .REQUEST_TERMINATED_DAEMON_SHUTDOWN: "shutdown"
        case .REQUEST_TERMINATED_READ_ERROR: "read_error"
        case .REQUEST_TERMINATED_CLIENT_ABORT: "client_abort"
        case .REQUEST_TERMINATED_COMPLETED_OK: "ok"
        }
    }
}

/// Appends text and decimals to a buffer the caller sized. Raw pointer writes: the checked buffer subscripts and
/// `initialize(fromContentsOf:)` were ~300 instructions a line.
private struct LineWriter {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    init(buffer: UnsafeMutableBufferPointer<UInt8>) { base = buffer.baseAddress! }

    mutating func append(_ text: String) {
        // Native and small strings are contiguous: one copy. A byte loop cost ~10 instructions a byte.
        let copied: Int? = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let from = bytes.baseAddress { (base + count).update(from: from, count: bytes.count) }
            return bytes.count
        }
        if let copied {
            count += copied
            return
        }
        for byte in text.utf8 {
            base[count] = byte
            count += 1
        }
    }

    mutating func appendLiteral(_ literal: StaticString) {
        (base + count).update(from: literal.utf8Start, count: literal.utf8CodeUnitCount)
        count += literal.utf8CodeUnitCount
    }

    mutating func append(_ value: UInt64) {
        var digits = 1
        var rest = value
        while rest >= 10 {
            digits += 1
            rest /= 10
        }
        var v = value
        var at = base + count + digits
        repeat {
            at -= 1
            at.pointee = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
            v /= 10
        } while v > 0
        count += digits
    }
}

/// Per-request state, kept in MHD's `*con_cls` from the first access-handler call to the completion callback.
/// A connection is served by one pool thread at a time, so this is never touched concurrently.
final class RequestContext {
    let startNanoseconds: UInt64
    /// The request's counter slot (ServerState), where it is counted out again.
    let slot: UInt32
    let method: String
    let path: String
    var body: [UInt8] = []
    /// Content-Length (0 when absent): how far the body's storage grows at once once its first reservation is full.
    var declaredBodyBytes = 0
    /// The request headers (bytes), collected when they arrived (the first call), handed to the request at the last.
    var headerFields = HeaderFields()
    /// Set once the body passed `maxBodyBytes`: the rest is read and thrown away, then 413.
    var bodyTooLarge = false
    var discardedBytes = 0
    var responded = false
    var status = 0
    var responseBytes = 0
    var requestID = ""
    /// The body MHD is sending, owned here until MHD releases it (see `makeMHDResponse`).
    var responseBody: [UInt8] = []
    /// Set while the connection is suspended for a deferred answer.
    var suspension: Suspensions.Entry?

    init(startNanoseconds: UInt64, slot: UInt32, method: String, path: String) {
        self.startNanoseconds = startNanoseconds
        self.slot = slot
        self.method = method
        self.path = path
    }
}

/// "<8 hex digits of prefix>-<hex sequence>", built in one allocation (this runs for every request).
func generatedRequestID(prefix: UInt32, sequence: UInt64) -> String {
    let sequenceDigits = max(1, (64 - sequence.leadingZeroBitCount + 3) / 4)
    // All 16 digits of the sequence at once, then its significant ones copied.
    var sequenceHex = (hexDigits(UInt32(truncatingIfNeeded: sequence >> 32)).bigEndian,
                       hexDigits(UInt32(truncatingIfNeeded: sequence)).bigEndian)
    return withUnsafeBytes(of: &sequenceHex) { sequenceText in
        String(unsafeUninitializedCapacity: 9 + sequenceDigits) { buffer in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)  // capacity 10 or more
            base.storeBytes(of: hexDigits(prefix).bigEndian, as: UInt64.self)
            base.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 8, as: UInt8.self)
            (base + 9).copyMemory(from: sequenceText.baseAddress! + (16 - sequenceDigits), byteCount: sequenceDigits)
            return 9 + sequenceDigits
        }
    }
}

/// The 8 lower-case hex digits of `value` as ASCII bytes, the most significant digit in the highest byte (store
/// `.bigEndian` to write them in reading order). All digits at once: a loop cost ~16 instructions a digit.
@inline(__always)
private func hexDigits(_ value: UInt32) -> UInt64 {
    var x = UInt64(value)
    // Spread the nibbles to one per byte.
    x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF)
    x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF)
    x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F)
    let isLetter = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101  // 1 in each byte whose nibble >= 10
    return x &+ 0x3030_3030_3030_3030 &+ isLetter &* 0x27  // "0"... or, 39 further, "a"...
}
