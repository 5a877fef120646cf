import Foundation
import HTTPTesting

/// Sends GET `target` on a new connection from another thread; the semaphore is signalled once the result is in.
func requestInBackground(
    port: Int, _ target: String, timeoutSeconds: Int = 60
) -> (Shared<Result<RawResponse, any Error>?>, DispatchSemaphore) {
    let result = Shared<Result<RawResponse, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Thread {
        result.withLock { result in
            result = Result { try TestConnection(port: port, timeoutSeconds: timeoutSeconds).request("GET", target) }
        }
        done.signal()
    }.start()
    return (result, done)
}
