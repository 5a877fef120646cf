import HTTPServer

/// The browser page (`/`, its script and style), served from the binary.
enum PageRoutes {
    static func register(in router: inout Router) {
    }
}
