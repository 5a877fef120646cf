/// A RESP2 reply.
public enum RedisValue: Sendable, Equatable {
    case bulk([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    /// An error reply (`-ERR ...`, `-OOM ...`): the connection stays usable.
    case error(String)
}

/// Why Redis could not answer. Every case means "unavailable": the caller cannot tell whether a key exists.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// Connect, read or write failed (refused, reset, closed).
        case connection
        /// A read or write waited longer than the command timeout (or the connect than the connect timeout).
        case timeout
        /// The reply could not be parsed.
        case `protocol`
        /// The server refused the connection's setup (AUTH, SELECT).
        case setup
        /// Not tried: the circuit breaker is open after a recent failure.
        case circuitOpen
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "redis \(kind.rawValue): \(message)" }
}
