import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options that fall back to an environment variable, then to a default (`--port`, then `PORT`, then 8080).
enum EnvironmentDefault {
    static func string(_ option: String?, _ variable: String, default fallback: String) -> String {
        option ?? environment(variable) ?? fallback
    }

    static func int(_ option: Int?, _ variable: String, default fallback: Int) throws -> Int {
        if let option { return option }
        guard let text = environment(variable) else { return fallback }
        guard let value = Int(text) else {
            throw ValidationError("The environment variable \(variable)='\(text)' is not a whole number.")
        }
        return value
    }

    static func flag(_ option: Bool, _ variable: String) throws -> Bool {
        if option { return true }
        guard let text = environment(variable)?.lowercased() else { return false }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: throw ValidationError("The environment variable \(variable)='\(text)' is not a boolean (1/0, true/false).")
        }
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
