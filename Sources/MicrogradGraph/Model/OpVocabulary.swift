import Micrograd

/// The ops as requests spell them, derived from the engine's `Op` (its `name`, `symbol` and `arity`): adding an op
/// to the engine adds it here, to the decoder, the expression compiler and their error messages.
/// A test checks openapi.yaml and the page's script against these lists.
public enum OpVocabulary {
    /// Every wire name, once, in `Op` order ("pow" names both pow forms): add sub mul div neg pow exp ...
    public static let names: [String] = unique(Op.allCases.filter { $0 != .leaf }.map(\.name))

    /// The infix symbols a graph request may use instead of a name: `+ - * / **`.
    public static let symbols: [String] = unique(Op.allCases.map(\.symbol).filter(isOperatorSymbol))

    /// The expression language's functions: every op that is not an infix operator there, with its argument count
    /// (`pow(a, b)` takes two: the two-input form). exp, log, ... take one.
    public static let functions: [(name: String, arity: Int)] = unique(
        Op.allCases.filter { $0 != .leaf && $0 != .powConst && !infixOperators.contains($0.symbol) }.map(\.name)
    ).map { name in (name, Op.allCases.filter { $0.name == name }.map(\.arity).max()!) }

    /// The one-argument function `name` stands for.
    static func unaryFunction(_ name: String) -> Op? {
        Op.allCases.first { $0.name == name && $0.arity == 1 && $0 != .powConst }
    }

    /// The argument count of function `name`; nil when there is no such function.
    static func functionArity(_ name: String) -> Int? {
        functions.first { $0.name == name }?.arity
    }

    /// What a request's `op` names: an engine op, or one of the two names whose op depends on the inputs.
    enum Named: Equatable {
        case op(Op)
        /// "-": sub with two inputs, neg with one.
        case minus
        /// "pow"/"**": a constant exponent or two inputs.
        case pow
    }

    /// The op that the bytes of a request's `op` name (a wire name or a symbol); nil for an unknown name.
    static func named(_ bytes: UnsafeBufferPointer<UInt8>) -> Named? {
        // Names of up to 8 bytes (all of today's) are compared as one word: the generic `elementsEqual` of an
        // array with a buffer was ~80 instructions a candidate, ~400 a request of two ops.
        if let word = word(bytes) {
            for entry in table where entry.count == bytes.count && entry.word == word { return entry.named }
            return nil
        }
        for entry in table where entry.count == bytes.count && entry.bytes.elementsEqual(bytes) { return entry.named }
        return nil
    }

    /// Up to 8 bytes in one word (nil for a longer name); with the length, equal words mean equal names.
    private static func word(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard bytes.count <= 8 else { return nil }
        var word: UInt64 = 0
        for (i, byte) in bytes.enumerated() { word |= UInt64(byte) << (8 * UInt64(i)) }
        return word
    }

    /// Names and symbols with what they mean, from `Op.allCases`; compared by length first.
    private static let table: [(bytes: [UInt8], count: Int, word: UInt64?, named: Named)] = Op.allCases.filter { $0 != .leaf }.flatMap { op in
        let named: Named = op == .pow || op == .powConst ? .pow : op == .sub ? .minus : .op(op)
        // "-" alone is ambiguous (neg or sub): sub's symbol says minus; neg is only spelled by name.
        var spellings = [(op.name, op == .sub ? Named.op(.sub) : named)]
        if isOperatorSymbol(op.symbol) { spellings.append((op.symbol, named)) }
        return spellings.map { spelling, named in
            let bytes = Array(spelling.utf8)
            return (bytes, bytes.count, bytes.withUnsafeBufferPointer(word), named)
        }
    }

    /// The expression language's infix operators (every other op is a function there).
    private static let infixOperators: Set<String> = ["+", "-", "*", "/"]

    private static func isOperatorSymbol(_ symbol: String) -> Bool {
        !symbol.isEmpty && symbol.unicodeScalars.allSatisfy { "+-*/".unicodeScalars.contains($0) }
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}
