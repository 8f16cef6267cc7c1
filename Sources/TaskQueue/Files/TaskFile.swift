import CYaml
import Foundation
import Yams

/// A task file: YAML frontmatter (`id, repo, base, branch, worktree_path, priority, depends_on`) and a
/// markdown body.
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
    let data: Data
    if path == "-" {
      data = FileHandle.standardInput.readData(ofLength: maximumSize + 1)
    } else {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw QueueError.taskFile(path: display, problem: "no such file")
      }
      if isDirectory.boolValue { throw QueueError.taskFile(path: display, problem: "is a directory") }
      if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maximumSize {
        throw QueueError.taskFile(path: display, problem: "is larger than 1 MiB (\(size) bytes)")
      }
      guard let handle = FileHandle(forReadingAtPath: path) else {
        throw QueueError.taskFile(path: display, problem: "cannot be read (check its permissions)")
      }
      defer { try? handle.close() }
      data = handle.readData(ofLength: maximumSize + 1)
    }
    if data.count > maximumSize {
      throw QueueError.taskFile(path: display, problem: "is larger than 1 MiB")
    }
    let file = try parse(Array(data), path: display)
    let stem = path == "-" ? nil : ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    return (file, stem)
  }

  /// Parses a task file's bytes. A UTF-8 byte-order mark is skipped and CRLF line ends are accepted.
  public static func parse(_ bytes: [UInt8], path: String) throws -> TaskFile {
    var bytes = bytes[...]
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
    if bytes.contains(0) { throw QueueError.taskFile(path: path, problem: "is binary, not text") }
    guard let decoded = String(validating: bytes, as: UTF8.self) else {
      throw QueueError.taskFile(path: path, problem: "is not valid UTF-8 text")
    }
    let text = decoded.replacingOccurrences(of: "\r\n", with: "\n")
    var lines = text.components(separatedBy: "\n")
    var file = TaskFile(body: "")
    if lines.first.map({ $0.trimmingCharacters(in: .whitespaces) == "---" }) == true {
      guard let close = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" }) else {
        throw QueueError.taskFile(path: path, problem: "the frontmatter has no closing '---' line")
      }
      let yaml = lines[1..<close].joined(separator: "\n")
      try file.readFrontmatter(yaml, path: path)
      lines = Array(lines[(close + 1)...])
    }
    file.body = lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    guard !file.body.isEmpty else {
      throw QueueError.taskFile(path: path, problem: "the task body is empty (write the task below the frontmatter)")
    }
    return file
  }

  /// A YAML error in one clause with one position, counted in the task file (the frontmatter starts on
  /// line 2): `did not find expected ',' or ']' at line 3, column 1 (while parsing a flow sequence)`.
  static func describe(_ error: any Error) -> String {
    func at(_ mark: Mark) -> String { "at line \(mark.line + 1), column \(mark.column)" }
    switch error {
    case YamlError.scanner(let context, let problem, let mark, _),
      YamlError.parser(let context, let problem, let mark, _),
      YamlError.composer(let context, let problem, let mark, _):
      let during = context.map { " (\($0.text))" } ?? ""
      return "\(problem) \(at(mark))\(during)"
    case YamlError.duplicatedKeysInMapping(let duplicates, let context):
      return "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) \(at(context.mark))"
    default:
      return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
  }

  private mutating func readFrontmatter(_ yaml: String, path: String) throws {
    // Yams hashes every mapping key to find duplicates, so an alias bomb used as a key ("billion laughs")
    // would take exponential time before we see a single node: refuse aliases before composing.
    if Self.usesAlias(yaml) {
      throw QueueError.taskFile(
        path: path, problem: "the frontmatter uses a YAML alias ('*name'), which task files do not support")
    }
    let node: Node?
    do {
      node = try Yams.compose(yaml: yaml)
    } catch {
      throw QueueError.taskFile(path: path, problem: "malformed YAML frontmatter: \(Self.describe(error))")
    }
    guard let node else { return }
    guard let mapping = node.mapping else {
      throw QueueError.taskFile(path: path, problem: "the frontmatter must be a mapping of keys to values")
    }
    for (keyNode, value) in mapping {
      guard let key = keyNode.scalar?.string else {
        throw QueueError.taskFile(path: path, problem: "frontmatter keys must be plain words")
      }
      func scalar() throws -> String {
        guard let text = value.scalar?.string else {
          throw QueueError.taskFile(path: path, problem: "frontmatter key '\(key)' must be a single value")
        }
        // `id:`, `id: null`, `id: ~`: no value, not the word "null".
        if value.null != nil {
          throw QueueError.taskFile(
            path: path, problem: "frontmatter key '\(key)' has no value (remove it, or give one)")
        }
        return text
      }
      switch key {
      case "id": id = try scalar()
      case "repo": repo = try scalar()
      case "base": base = try scalar()
      case "branch": branch = try scalar()
      case "worktree_path": worktreePath = try scalar()
      case "priority":
        guard let number = Int(try scalar()) else {
          throw QueueError.taskFile(path: path, problem: "frontmatter key 'priority' must be an integer")
        }
        priority = number
      case "depends_on":
        if let items = value.sequence {
          dependsOn = try items.map { item in
            guard let text = item.scalar?.string else {
              throw QueueError.taskFile(path: path, problem: "'depends_on' must be a list of task ids")
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
            "unknown frontmatter key '\(QueueError.printable(key))' (allowed: \(TaskFile.allowedKeys.joined(separator: ", ")))"
        )
      }
    }
  }

  /// Whether `yaml` contains an alias event, found with libyaml's event parser (linear time, nothing is
  /// expanded). Malformed YAML returns `false`, so that composing it reports the syntax error.
  static func usesAlias(_ yaml: String) -> Bool {
    var bytes = Array(yaml.utf8)
    guard !bytes.isEmpty else { return false }
    return bytes.withUnsafeMutableBufferPointer { buffer -> Bool in
      var parser = yaml_parser_t()
      guard yaml_parser_initialize(&parser) == 1 else { return false }
      defer { yaml_parser_delete(&parser) }
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      while true {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { return false }
        let type = event.type
        yaml_event_delete(&event)
        if type == YAML_ALIAS_EVENT { return true }
        if type == YAML_STREAM_END_EVENT || type == YAML_NO_EVENT { return false }
      }
    }
  }

  /// `"T-1, T-2"` → `["T-1", "T-2"]`.
  public static func splitList(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }

  /// The canonical file stored in the ref: every resolved value in the frontmatter, then the body.
  public static func canonical(for record: TaskRecord, body: String) -> String {
    var pairs: [(Node, Node)] = [
      ("id", Node(record.id)), ("repo", Node(record.repo)), ("base", Node(record.base)),
      ("branch", Node(record.branch)),
    ]
    if let worktree = record.worktreePath { pairs.append(("worktree_path", Node(worktree))) }
    if record.priority != 0 { pairs.append(("priority", Node(String(record.priority), Tag(.int)))) }
    if !record.dependsOn.isEmpty {
      pairs.append(("depends_on", Node(record.dependsOn.map { Node($0) })))
    }
    let yaml = (try? Yams.serialize(node: Node(pairs))) ?? ""
    return "---\n\(yaml)---\n\(body)\n"
  }
}
