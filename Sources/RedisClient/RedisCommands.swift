/// Commands in Redis's wire format (RESP2: each an array of bulk strings), one after another in one buffer: what a
/// pipeline sends. Built argument by argument, so a command costs no array per argument and hiredis no formatting.
///
///     var commands = RedisCommands()
///     commands.begin(arguments: 3)
///     commands.argument("SET"); commands.argument(key); commands.argument(value)
public struct RedisCommands: Sendable, Equatable {
    /// The encoded commands.
    public private(set) var bytes: [UInt8] = []
    /// How many commands `bytes` holds: Redis answers each with one reply.
    public private(set) var count = 0
    /// Arguments the last command announced and has not received yet: only a complete buffer may be sent.
    private var missing = 0

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// The commands, each a list of binary-safe arguments, e.g. `[["GET", key]]` as bytes.
    public init(_ commands: [[[UInt8]]]) {
        for command in commands { append(command) }
    }

    public var isComplete: Bool { missing == 0 }

    public mutating func append(_ arguments: [[UInt8]]) {
        begin(arguments: arguments.count)
        for argument in arguments { self.argument(argument) }
    }

    /// Starts a command of `arguments` arguments; exactly that many `argument` calls must follow.
    public mutating func begin(arguments: Int) {
        precondition(missing == 0 && arguments > 0, "a command needs its arguments before the next one begins")
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(UInt(arguments))
        crlf()
        missing = arguments
        count += 1
    }

    public mutating func argument(_ bytes: UnsafeRawBufferPointer) {
        header(length: bytes.count)
        self.bytes.append(contentsOf: bytes)
        self.crlf()
    }

    public mutating func argument(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { argument($0) }
    }

    public mutating func argument(_ text: StaticString) {
        argument(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    public mutating func argument(utf8 text: String) { argument([], text) }

    /// `prefix` then `text`, as one argument (a key under a namespace) without building the joined string.
    public mutating func argument(_ prefix: [UInt8], _ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            header(length: prefix.count + utf8.count)
            bytes.append(contentsOf: prefix)
            bytes.append(contentsOf: UnsafeRawBufferPointer(utf8))
        }
        crlf()
    }

    /// An integer in decimal, as Redis reads numbers (`EX 3600`).
    public mutating func argument(_ number: Int) {
        var digits = 1, rest = number.magnitude
        while rest >= 10 { rest /= 10; digits += 1 }
        header(length: digits + (number < 0 ? 1 : 0))
        if number < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(number.magnitude)
        crlf()
    }

    private mutating func header(length: Int) {
        precondition(missing > 0, "more arguments than the command announced")
        missing -= 1
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(UInt(length))
        crlf()
    }

    private mutating func crlf() {
        bytes.append(13)
        bytes.append(10)
    }

    private mutating func appendDecimal(_ value: UInt) {
        if value >= 10 { appendDecimal(value / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
