#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A task file: YAML frontmatter (`id, repo, base, branch, worktree_path, priority, depends_on`) and a
/// markdown body. The frontmatter is the YAML subset of ``Frontmatter``.
public struct TaskFile: Equatable, Sendable {
  public var id: String?
  public var repo: String?
  public var base: String?
  public var branch: String?
  public var worktreePath: String?
  public var priority: Int?
  public var dependsOn: [String]?
  public var body: String

  /// Task files larger than this are refused (1 MiB).
  public static let maximumSize = 1 << 20
  public static let allowedKeys = ["id", "repo", "base", "branch", "worktree_path", "priority", "depends_on"]

  public init(
    id: String? = nil, repo: String? = nil, base: String? = nil, branch: String? = nil,
    worktreePath: String? = nil, priority: Int? = nil, dependsOn: [String]? = nil, body: String
  ) {
    self.id = id
    self.repo = repo
    self.base = base
    self.branch = branch
    self.worktreePath = worktreePath
    self.priority = priority
    self.dependsOn = dependsOn
    self.body = body
  }

  /// Reads and parses the file at `path` (`-` reads standard input).
  ///
  /// - Returns: the parsed file and the file name's stem (`nil` for standard input), from which the id is
  ///   derived when the frontmatter has none.
  public static func read(path: String) throws -> (file: TaskFile, stem: String?) {
    let display = path == "-" ? "<stdin>" : path
    var bytes: [UInt8]
    if path == "-" {
      bytes = readAll(0, limit: maximumSize + 1)
    } else {
      var info = stat()
      guard stat(path, &info) == 0 else { throw QueueError.taskFile(path: display, problem: "no such file") }
      if info.st_mode & S_IFMT == S_IFDIR { throw QueueError.taskFile(path: display, problem: "is a directory") }
      if Int(info.st_size) > maximumSize {
        throw QueueError.taskFile(path: display, problem: "is larger than 1 MiB (\(info.st_size) bytes)")
      }
      let descriptor = open(path, O_RDONLY | O_CLOEXEC)
      guard descriptor >= 0 else {
        throw QueueError.taskFile(path: display, problem: "cannot be read (check its permissions)")
      }
      defer { close(descriptor) }
      bytes = readAll(descriptor, limit: maximumSize + 1)
    }
    if bytes.count > maximumSize {
      throw QueueError.taskFile(path: display, problem: "is larger than 1 MiB")
    }
    let file = try parse(bytes, path: display)
    let stem = path == "-" ? nil : PathName.deletingExtension(PathName.lastComponent(path))
    return (file, stem)
  }

  /// Parses a task file's bytes. A UTF-8 byte-order mark is skipped and CRLF line ends are accepted.
  public static func parse(_ bytes: [UInt8], path: String) throws -> TaskFile {
    var bytes = bytes[...]
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
    if bytes.contains(0) { throw QueueError.taskFile(path: path, problem: "is binary, not text") }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw QueueError.taskFile(path: path, problem: "is not valid UTF-8 text")
    }
    // Lines without their "\n" or "\r\n" (split on scalars: "\r\n" is one Character).
    var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
      Substring(line.last == "\r" ? line.dropLast() : line)
    }
    var file = TaskFile(body: "")
    func isFence(_ line: Substring) -> Bool { Frontmatter.trimmingWhiteSpace(line) == "---" }
    if let first = lines.first, isFence(first) {
      guard let close = lines.dropFirst().firstIndex(where: isFence) else {
        throw QueueError.taskFile(path: path, problem: "the frontmatter has no closing '---' line")
      }
      try file.readFrontmatter(Array(lines[1..<close]), path: path)
      lines = Array(lines[(close + 1)...])
    }
    file.body = Frontmatter.trimmingWhiteSpace(lines.joined(separator: "\n"))
    guard !file.body.isEmpty else {
      throw QueueError.taskFile(path: path, problem: "the task body is empty (write the task below the frontmatter)")
    }
    return file
  }

  private mutating func readFrontmatter(_ lines: [Substring], path: String) throws {
    let entries: [Frontmatter.Entry]
    do {
      // The frontmatter's first line is the task file's line 2.
      entries = try Frontmatter.parse(lines, firstLine: 2)
    } catch {
      let problem =
        error.isMalformed
        ? "malformed YAML frontmatter at line \(error.line): \(error.problem)"
        : "\(error.problem) (line \(error.line))"
      throw QueueError.taskFile(path: path, problem: problem)
    }
    for entry in entries {
      let key = entry.key
      func scalar() throws -> String {
        switch entry.value {
        case .scalar(let text): return text
        // `id:`, `id: null`, `id: ~`: no value, not the word "null".
        case .null:
          throw QueueError.taskFile(
            path: path, problem: "frontmatter key '\(key)' has no value (remove it, or give one) (line \(entry.line))")
        case .sequence, .mapping:
          throw QueueError.taskFile(
            path: path, problem: "frontmatter key '\(key)' must be a single value (line \(entry.line))")
        }
      }
      switch key {
      case "id": id = try scalar()
      case "repo": repo = try scalar()
      case "base": base = try scalar()
      case "branch": branch = try scalar()
      case "worktree_path": worktreePath = try scalar()
      case "priority":
        guard let number = Int(try scalar()) else {
          throw QueueError.taskFile(
            path: path, problem: "frontmatter key 'priority' must be an integer (line \(entry.line))")
        }
        priority = number
      case "depends_on":
        if case .sequence(let items) = entry.value {
          dependsOn = try items.map { item in
            guard case .scalar(let text) = item else {
              throw QueueError.taskFile(
                path: path, problem: "'depends_on' must be a list of task ids (line \(entry.line))")
            }
            return text
          }
        } else {
          dependsOn = TaskFile.splitList(try scalar())
        }
      default:
        throw QueueError.taskFile(
          path: path,
          problem:
            "unknown frontmatter key '\(QueueError.printable(key))' (allowed: \(TaskFile.allowedKeys.joined(separator: ", "))) (line \(entry.line))"
        )
      }
    }
  }

  /// `"T-1, T-2"` → `["T-1", "T-2"]`.
  public static func splitList(_ text: String) -> [String] {
    text.split(separator: ",").map { Frontmatter.trimmingWhiteSpace($0) }.filter { !$0.isEmpty }
  }

  /// The canonical file stored in the ref: every resolved value in the frontmatter, then the body.
  ///
  /// Each value is spelled so that any YAML reader reads it back unchanged (``Frontmatter/scalar(_:)``).
  public static func canonical(for record: TaskRecord, body: String) -> String {
    var yaml = "id: \(Frontmatter.scalar(record.id))\nrepo: \(Frontmatter.scalar(record.repo))\n"
    yaml += "base: \(Frontmatter.scalar(record.base))\nbranch: \(Frontmatter.scalar(record.branch))\n"
    if let worktree = record.worktreePath { yaml += "worktree_path: \(Frontmatter.scalar(worktree))\n" }
    if record.priority != 0 { yaml += "priority: \(record.priority)\n" }
    if !record.dependsOn.isEmpty { yaml += "depends_on:\n" + Frontmatter.blockList(record.dependsOn) }
    return "---\n\(yaml)---\n\(body)\n"
  }
}

/// Up to `limit` bytes from `descriptor`, until its end.
private func readAll(_ descriptor: Int32, limit: Int) -> [UInt8] {
  var bytes = [UInt8](repeating: 0, count: limit)
  var count = 0
  while count < limit {
    let n = bytes[count...].withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
    if n < 0 && errno == EINTR { continue }
    guard n > 0 else { break }
    count += n
  }
  return Array(bytes[..<count])
}
