/// RFC 6901 JSON pointers, built only when a problem is reported (never on the fast path).
enum JSONPointer {
    /// One reference token: `~` becomes `~0`, `/` becomes `~1`.
    static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var out = ""
        out.reserveCapacity(token.utf8.count + 4)
        for ch in token.unicodeScalars {
            switch ch {
            case "~": out += "~0"
            case "/": out += "~1"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func node(_ index: Int) -> String { "/nodes/\(index)" }
    static func node(_ index: Int, _ member: String) -> String { "/nodes/\(index)/\(escape(member))" }
    static func input(_ node: Int, _ input: Int) -> String { "/nodes/\(node)/inputs/\(input)" }
}
