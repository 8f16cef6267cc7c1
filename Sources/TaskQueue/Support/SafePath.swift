/// The one way to build a filesystem path from queue data (a task id, a report name, a repository name):
/// every component is checked, and a path that would leave its root is refused.
///
/// Used for the per-task secrets, worktree paths, error reports and everything under `.git/taskq/`.
public enum SafePath {
  /// `root/c1/c2/…`, each component checked by ``PathComponent/problem(with:)``.
  ///
  /// - Throws: ``QueueError/unsafePath(root:component:reason:)`` when a component is empty, `.` or `..`,
  ///   holds `/`, NUL or another control character, or is longer than 255 bytes; or when `root` is not an
  ///   absolute path.
  public static func join(_ root: String, _ components: String...) throws -> String {
    try join(root, components)
  }

  public static func join(_ root: String, _ components: [String]) throws -> String {
    guard root.hasPrefix("/"), !root.utf8.contains(0) else {
      throw QueueError.unsafePath(root: root, component: "", reason: "the root is not an absolute path")
    }
    var path = Paths.trimmingTrailingSlashes(root)
    for component in components {
      if let reason = PathComponent.problem(with: component) {
        throw QueueError.unsafePath(root: root, component: component, reason: reason)
      }
      path += (path == "/" ? "" : "/") + component
    }
    return path
  }
}

/// One name inside a directory.
public enum PathComponent {
  public static let maximumLength = 255

  /// Why `name` cannot be one path component below a root, or `nil`.
  public static func problem(with name: String) -> String? {
    if name.isEmpty { return "it is empty" }
    if name == "." || name == ".." { return "it is '\(name)'" }
    if name.utf8.count > maximumLength { return "it is longer than \(maximumLength) bytes" }
    if name.utf8.contains(UInt8(ascii: "/")) { return "it contains '/'" }
    if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || (0x80..<0xa0).contains($0.value) })
    {
      return "it contains a control character"
    }
    return nil
  }
}
