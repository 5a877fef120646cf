import HTTPServer
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// swift-log's `StreamLogHandler` line format (`<time> <level> <label>: [<source>] <message>`) on standard output,
/// built straight into the output buffer for the common line without metadata: one access-log line per request cost
/// ~10,000 instructions through StreamLogHandler's interpolations, strftime array and String round trips.
/// Lines with metadata (or an error, or a metadata provider) go through a StreamLogHandler: same text either way.
struct LineLogHandler: LogHandler {
    private var full: StreamLogHandler
    private let label: String

    init(label: String) {
        self.label = label
        full = StreamLogHandler(label: label, stream: StandardOutputLines())
    }

    var logLevel: Logger.Level {
        get { full.logLevel }
        set { full.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { full.metadata }
        set { full.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { full.metadataProvider }
        set { full.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { full[metadataKey: key] }
        set { full[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        guard full.metadata.isEmpty, full.metadataProvider == nil, event.metadata?.isEmpty ?? true, event.error == nil else {
            full.log(event: event)
            return
        }
        var message = event.message.description
        message.withUTF8 { message in
            // Warnings and errors are written at once; info lines wait in the buffer.
            Self.write(level: event.level, label: label, source: event.source, message: UnsafeRawBufferPointer(message),
                       flush: event.level >= .notice)
        }
    }

    /// `<time> <level> <label>: [<source>] <message>` and a newline, into the output buffer.
    static func write(level: Logger.Level, label: String, source: String, message: UnsafeRawBufferPointer, flush: Bool) {
        BufferedStandardOutput.shared.append(
            reserve: 48 + label.utf8.count + source.utf8.count + message.count, flush: flush
        ) { buffer in
            buffer.appendTimestamp()
            buffer.append(UInt8(ascii: " "))
            buffer.append(level.rawValue)
            if !label.isEmpty { buffer.append(UInt8(ascii: " ")) }
            buffer.append(label)
            buffer.append(": [")
            buffer.append(source)
            buffer.append("] ")
            buffer.append(message)
            buffer.append(UInt8(ascii: "\n"))
        }
    }
}

/// The server's access log straight into the output buffer, as the same lines a `LineLogHandler` writes for
/// `logger.info(line, source: HTTPServer.accessLogSource)`, without a String or LogEvent per request.
struct AccessLogLines: AccessLogSink {
    /// What follows the timestamp, up to the message: `" info <label>: [HTTPServer] "`, made once (six appends a line).
    private let middle: [UInt8]

    init(label: String) {
        var middle = Array(" \(Logger.Level.info.rawValue)".utf8)
        if !label.isEmpty { middle.append(UInt8(ascii: " ")) }
        middle += Array("\(label): [\(HTTPServer.accessLogSource)] ".utf8)
        self.middle = middle
    }

    func writeAccessLine(_ line: UnsafeRawBufferPointer) {
        BufferedStandardOutput.shared.appendToLane(reserve: 25 + middle.count + line.count) { out, stamp in
            var count = stamp.write(to: out)
            middle.withUnsafeBytes { count += copy($0, to: out + count) }
            count += copy(line, to: out + count)
            out[count] = UInt8(ascii: "\n")
            return count + 1
        }
    }
}

/// `strftime("%Y-%m-%dT%H:%M:%S%z")` of local time, as StreamLogHandler writes it, computed once a second:
/// localtime_r + strftime were ~1,900 instructions a line. One lives in the shared output buffer (under its lock)
/// and one in each access-log lane (its thread's only).
struct LogTimestamp {
    fileprivate var second: time_t = -1
    /// 24 bytes ("2026-11-27T03:06:05+0000"), inline: no allocation.
    fileprivate var text: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    fileprivate var count = 0

    /// Writes the current second's text (at most 24 bytes) at `out`; returns its length.
    mutating func write(to out: UnsafeMutablePointer<UInt8>) -> Int {
        withCurrentText { copy($0, to: out) }
    }

    /// The current second's text, or `<unknown>` when the clock cannot be formatted.
    mutating func withCurrentText<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        update()
        if count == 0 {
            let unknown: StaticString = "<unknown>"
            return body(UnsafeRawBufferPointer(start: unknown.utf8Start, count: unknown.utf8CodeUnitCount))
        }
        let count = count
        return withUnsafeBytes(of: text) { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
    }

    fileprivate mutating func update() {
        let now = time(nil)
        guard now != second else { return }
        second = now
        var seconds = now
        var parts = tm()
        count = withUnsafeMutableBytes(of: &text) { raw in
            localtime_r(&seconds, &parts) == nil
                ? 0 : strftime(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        }
    }
}

extension BufferedStandardOutput.Buffer {
    mutating func appendTimestamp() {
        var stamp = stamp
        stamp.withCurrentText { append($0) }
        self.stamp = stamp
    }
}

/// Copies `bytes` to `out` (room reserved by the caller); returns the count.
@inline(__always)
private func copy(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) -> Int {
    guard let source = bytes.baseAddress, bytes.count > 0 else { return 0 }
    out.update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    return bytes.count
}
