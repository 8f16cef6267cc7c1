import Git

/// How the queue ref travels to and from a remote. The git CLI implements it (users' protocols, credential
/// helpers and ssh configuration then work as for any git command); tests may use the same.
public protocol QueueTransport {
  /// Whether `remote` is configured in this repository.
  func remoteExists(_ remote: String) throws -> Bool
  /// Fetches the remote's `refs/taskq/queue` into `trackingRef` (forced: the tracking ref mirrors the remote).
  func fetch(remote: String, into trackingRef: String) throws -> FetchResult
  /// Pushes `commit` to the remote's `refs/taskq/queue` with a plain, non-forced push.
  func push(remote: String, commit: ObjectID) throws -> PushResult
}

public enum FetchResult: Equatable, Sendable {
  case fetched
  /// The remote has no queue yet (a first push creates it).
  case noQueue
}

public enum PushResult: Equatable, Sendable {
  case pushed
  case upToDate
  /// The server refused: someone else wrote first.
  case rejected(String)
}

/// A remote that could not be reached or refused to talk; the local queue is untouched.
public struct TransportError: Error, CustomStringConvertible {
  public var remote: String
  public var reason: String
  /// The remote was reached but will not take the queue's ref (a hook, permissions, push rules).
  public var refused: Bool
  public init(remote: String, reason: String, refused: Bool = false) {
    self.remote = remote
    self.reason = reason
    self.refused = refused
  }
  public var description: String {
    if refused {
      return "remote '\(remote)' refused \(Layout.refName): \(reason) "
        + "(nothing was published; the local queue keeps its operations)"
    }
    return "cannot reach remote '\(remote)': \(reason) "
      + "(the local queue is unchanged and still usable; sync again later)"
  }
}
