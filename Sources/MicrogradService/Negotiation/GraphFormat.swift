import HTTPServer

/// The representations an evaluated graph can be served in.
public enum GraphFormat: String, Sendable, CaseIterable {
    case json, dot, jgf, svg

    public var contentType: String {
        switch self {
        case .json: "application/json"
        case .dot: "text/vnd.graphviz; charset=utf-8"
        case .jgf: "application/vnd.jgf+json"
        case .svg: "image/svg+xml"
        }
    }

    /// Media types (lowercase, no parameters) that select this format in `Accept`.
    var mediaTypes: [String] {
        switch self {
        case .json: ["application/json"]
        case .dot: ["text/vnd.graphviz"]
        case .jgf: ["application/vnd.jgf+json"]
        case .svg: ["image/svg+xml"]
        }
    }

    /// The format `name` names (`json`, `dot`, `jgf`, `svg`), ASCII case-insensitive: `?format=` and `--format`.
    public init?(named name: some StringProtocol) {
        guard let format = Self.allCases.first(where: { asciiCaseInsensitiveEqual($0.rawValue, String(name)) }) else { return nil }
        self = format
    }

    /// Every format's name, for messages: "json, dot, jgf, svg".
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Every format's media type, for messages.
    static var mediaTypeNames: String { allCases.map { $0.mediaTypes[0] }.joined(separator: ", ") }

    /// Chooses a format from an `Accept` header (RFC 9110 q-values; ties go to the order listed; `*/*` and
    /// `application/*` mean the default). Nil: nothing acceptable.
    public static func negotiate(accept: String?, default fallback: GraphFormat) -> GraphFormat? {
        guard let accept, !accept.allSatisfy({ $0 == " " }) else { return fallback }
        var best: (format: GraphFormat, quality: Double)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            guard let first = parts.first else { continue }
            let mediaType = first.trimmingSpaces().lowercased()
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                if pair.count == 2, asciiCaseInsensitiveEqual(pair[0].trimmingSpaces(), "q"),
                   let q = Double(pair[1].trimmingSpaces()), q >= 0, q <= 1 { quality = q }
            }
            guard quality > 0 else { continue }
            let candidate: GraphFormat?
            switch mediaType {
            case "*/*", "application/*": candidate = fallback
            case "text/*": candidate = .dot
            case "image/*": candidate = .svg
            default: candidate = allCases.first { $0.mediaTypes.contains(mediaType) }
            }
            if let candidate, quality > (best?.quality ?? 0) { best = (candidate, quality) }
        }
        return best?.format
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
