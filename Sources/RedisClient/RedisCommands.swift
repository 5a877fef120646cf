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

    /// Bytes for ``append(_:)-(Argument...)``: one range, or two written as one argument (a key: namespace and name).
    /// Valid only while the memory it points to is (inside the caller's `withUnsafeBytes`).
    public struct Argument {
        let head: UnsafeRawBufferPointer
        let tail: UnsafeRawBufferPointer

        public init(_ head: UnsafeRawBufferPointer, _ tail: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
            self.head = head
            self.tail = tail
        }

        public init(_ text: StaticString) {
            self.init(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }

        var count: Int { head.count + tail.count }
    }

    /// A whole command in one pass: measured first, then written straight into a buffer of exactly its size. Each
    /// byte appended to the array on its own cost about 4,500 instructions for the two SETs of an evaluation.
    public mutating func append(_ arguments: Argument...) {
        precondition(missing == 0 && !arguments.isEmpty, "a command needs its arguments before the next one begins")
        var size = 3 + Self.digits(arguments.count)
        for argument in arguments { size += 5 + Self.digits(argument.count) + argument.count }
        let command = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var at = buffer.baseAddress!
            Self.put(header: UInt8(ascii: "*"), arguments.count, at: &at)
            for argument in arguments {
                Self.put(header: UInt8(ascii: "$"), argument.count, at: &at)
                Self.put(argument.head, at: &at)
                Self.put(argument.tail, at: &at)
                at[0] = 13
                at[1] = 10
                at += 2
            }
            initialized = at - buffer.baseAddress!
            precondition(initialized == size)
        }
        if bytes.isEmpty { bytes = command } else { bytes.append(contentsOf: command) }
        count += 1
    }

    /// `*3\r\n` or `$42\r\n`.
    @inline(__always)
    private static func put(header: UInt8, _ value: Int, at: inout UnsafeMutablePointer<UInt8>) {
        at[0] = header
        let n = digits(value)
        var rest = value
        for k in stride(from: n, to: 0, by: -1) {
            at[k] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        at[n + 1] = 13
        at[n + 2] = 10
        at += n + 3
    }

    @inline(__always)
    private static func put(_ bytes: UnsafeRawBufferPointer, at: inout UnsafeMutablePointer<UInt8>) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        UnsafeMutableRawPointer(at).copyMemory(from: base, byteCount: bytes.count)
        at += bytes.count
    }

    private static func digits(_ value: Int) -> Int {
        var digits = 1, rest = value
        while rest >= 10 { rest /= 10; digits += 1 }
        return digits
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
