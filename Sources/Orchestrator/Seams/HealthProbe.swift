/// Asks a task's OpenCode server whether it is up (`GET /global/health`).
///
/// The real one is ``LoopbackHealthProbe`` (a plain HTTP/1.0 request to 127.0.0.1); a fake answers what a
/// test needs: never (a server that does not come up), or 200 after some calls.
public protocol HealthProbe: Sendable {
  /// The HTTP status of `GET path` on 127.0.0.1:`port`, or `nil` when nothing answered within `timeout`.
  func httpStatus(port: Int, path: String, timeout: Double, authorization: String?) -> Int?
}

/// ``Loopback/httpStatus(port:path:timeout:authorization:)``.
public struct LoopbackHealthProbe: HealthProbe {
  public init() {}

  public func httpStatus(port: Int, path: String, timeout: Double, authorization: String?) -> Int? {
    Loopback.httpStatus(port: port, path: path, timeout: timeout, authorization: authorization)
  }
}
