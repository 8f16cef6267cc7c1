/// What a task's `repo` says, so that it means the same thing on every machine that runs the task.
///
/// Two clones are two machines: an absolute path written on one names nothing on another. So `add` stores
/// the repository in a machine-independent form whenever it can:
/// - `"."`: the repository that holds the queue (the default): each machine's own clone.
/// - a short name (`sisifo`): the directory of that name under the running machine's `taskq.reposRoot`
///   (the seed's meaning of `--repo NAME`).
/// - an absolute path: only when the user gave a path outside the queue's repository; it is
///   machine-specific, and another machine acts on it only when it trusts that path.
public enum RepositoryReference: Equatable, Sendable {
  case queue
  case named(String)
  case path(String)

  /// How `repo` stores ``queue``.
  public static let queueValue = "."

  /// Reads a stored `repo` value (records written before this form are absolute paths, read as such).
  public init(stored: String) {
    if stored == Self.queueValue {
      self = .queue
    } else if stored.hasPrefix("/") {
      self = .path(stored)
    } else {
      self = .named(stored)
    }
  }

  /// The value stored in `repo`.
  public var stored: String {
    switch self {
    case .queue: return Self.queueValue
    case .named(let name): return name
    case .path(let path): return path
    }
  }

  /// Whether `name` can be a short repository name: one path component, not `.`/`..`, no leading `-` or
  /// `~`, no control characters, at most 255 bytes.
  public static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 255 && name != "." && name != ".." && !name.contains("/")
      && !name.hasPrefix("-") && !name.hasPrefix("~")
      && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f || (0x80...0x9f).contains($0.value) }
  }

  /// The repository's directory on this machine, or `nil` for a short name that is not a valid one.
  ///
  /// - Parameters:
  ///   - queueRepository: the top-level directory of the repository that holds the queue here.
  ///   - reposRoot: this machine's `taskq.reposRoot`.
  /// - Returns: the directory's path here.
  public func resolve(queueRepository: String, reposRoot: String) -> String? {
    switch self {
    case .queue: return queueRepository
    case .named(let name):
      guard Self.isValidName(name) else { return nil }
      return Paths.trimmingTrailingSlashes(reposRoot) + "/" + name
    case .path(let path): return path
    }
  }

  /// A short label for people: the directory name (for ``queue``, the queue repository's).
  public func label(queueRepository: String) -> String {
    switch self {
    case .queue: return lastComponent(queueRepository)
    case .named(let name): return name
    case .path(let path): return lastComponent(path)
    }
  }

  private func lastComponent(_ path: String) -> String {
    let trimmed = Paths.trimmingTrailingSlashes(path)
    return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
  }
}
