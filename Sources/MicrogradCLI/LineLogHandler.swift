import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// swift-log's `StreamLogHandler` line format (`<time> <level> <label>: [<source>] <message>`) on standard output,
/// built straight into bytes for the common line without metadata: one access-log line per request cost
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
        let message = event.message.description
        var line: [UInt8] = []
        line.reserveCapacity(48 + label.utf8.count + message.utf8.count + 32)
        Self.appendTimestamp(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        if !label.isEmpty { line.append(UInt8(ascii: " ")) }
        line.append(contentsOf: label.utf8)
        line.append(contentsOf: ": [".utf8)
        line.append(contentsOf: event.source.utf8)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: message.utf8)
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBufferPointer { StandardOutputLines.write(bytes: $0) }
    }

    /// The text of the last second stamped: localtime_r + strftime were ~1,900 instructions a line.
    private static let lastStamp = Mutex(Timestamp())

    /// `strftime("%Y-%m-%dT%H:%M:%S%z")` of local time, as StreamLogHandler writes it (localtime_r: thread-safe).
    private static func appendTimestamp(to line: inout [UInt8]) {
        let now = time(nil)
        var stamp = lastStamp.withLock { $0 }
        if stamp.second != now {
            stamp = Timestamp(now)
            lastStamp.withLock { $0 = stamp }
        }
        withUnsafeBytes(of: stamp.text) { raw in
            if stamp.count == 0 {
                line.append(contentsOf: "<unknown>".utf8)
            } else {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[..<stamp.count]))
            }
        }
    }

    /// One second's timestamp text (24 bytes: "2026-11-27T03:06:05+0000"), inline: no allocation.
    private struct Timestamp {
        var second: time_t = -1
        var text: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count = 0

        init() {}

        init(_ now: time_t) {
            second = now
            var seconds = now
            var parts = tm()
            let written = withUnsafeMutableBytes(of: &text) { raw in
                localtime_r(&seconds, &parts) == nil
                    ? 0 : strftime(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
            }
            count = written
        }
    }
}
