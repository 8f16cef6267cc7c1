import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

/// Task files: YAML frontmatter and a markdown body, read from disk or parsed from bytes.
@Suite struct TaskFileTests {
  func parse(_ text: String) throws -> TaskFile {
    try TaskFile.parse(Array(text.utf8), path: "t.md")
  }

  /// The problem text of a refused file, or `nil` when it was accepted or failed otherwise.
  func refusal(_ bytes: [UInt8]) -> String? {
    do {
      _ = try TaskFile.parse(bytes, path: "t.md")
      return nil
    } catch QueueError.taskFile(let path, let problem) {
      #expect(path == "t.md")
      return problem
    } catch {
      Issue.record("unexpected error \(error)")
      return nil
    }
  }

  @Test func everyFrontmatterKey() throws {
    let file = try parse(
      """
      ---
      id: T-003
      repo: /home/user/documents/repos/sisifo
      base: develop
      branch: feature/my-branch
      worktree_path: /tmp/wt/T-003
      priority: 5
      depends_on: [T-001, T-002]
      ---
      Implement a small change with tests.

      Acceptance criteria:
      - Keep changes scoped.

      """)
    #expect(file.id == "T-003")
    #expect(file.repo == "/home/user/documents/repos/sisifo")
    #expect(file.base == "develop")
    #expect(file.branch == "feature/my-branch")
    #expect(file.worktreePath == "/tmp/wt/T-003")
    #expect(file.priority == 5)
    #expect(file.dependsOn == ["T-001", "T-002"])
    #expect(file.body == "Implement a small change with tests.\n\nAcceptance criteria:\n- Keep changes scoped.")
  }

  @Test func noFrontmatterIsAllBody() throws {
    let file = try parse("Just do it.\n")
    #expect(file == TaskFile(body: "Just do it."))
  }

  @Test func anEmptyFrontmatterIsAllowed() throws {
    #expect(try parse("---\n---\nBody\n") == TaskFile(body: "Body"))
  }

  @Test func dependsOnAsABlockListAndAsACommaString() throws {
    #expect(try parse("---\ndepends_on:\n  - A\n  - B\n---\nx").dependsOn == ["A", "B"])
    #expect(try parse("---\ndepends_on: A, B ,C\n---\nx").dependsOn == ["A", "B", "C"])
    #expect(try parse("---\ndepends_on: A\n---\nx").dependsOn == ["A"])
    #expect(try parse("---\ndepends_on: []\n---\nx").dependsOn == [])
    #expect(TaskFile.splitList(" a, ,b,") == ["a", "b"])
  }

  @Test func crlfLineEndsAreAccepted() throws {
    let file = try parse("---\r\nid: T-1\r\nbase: main\r\n---\r\nLine one\r\nLine two\r\n")
    #expect(file.id == "T-1")
    #expect(file.base == "main")
    #expect(file.body == "Line one\nLine two")
  }

  @Test func aByteOrderMarkIsSkipped() throws {
    let file = try TaskFile.parse([0xEF, 0xBB, 0xBF] + Array("---\nid: T-1\n---\nBody\n".utf8), path: "t.md")
    #expect(file.id == "T-1")
    #expect(file.body == "Body")
  }

  @Test func bomAndCRLFTogether() throws {
    let file = try TaskFile.parse([0xEF, 0xBB, 0xBF] + Array("---\r\nid: T-9\r\n---\r\nBody\r\n".utf8), path: "t.md")
    #expect(file.id == "T-9")
    #expect(file.body == "Body")
  }

  @Test func valuesThatLookLikeOtherTypesStayStrings() throws {
    let file = try parse("---\nid: 007\nbase: 1.0\nbranch: yes\n---\nx")
    #expect(file.id == "007")
    #expect(file.base == "1.0")
    #expect(file.branch == "yes")
  }

  @Test func aBodyThatBeginsWithADashIsKept() throws {
    #expect(try parse("--help me\n").body == "--help me")
    #expect(try parse("---\nid: X\n---\n-rf everything\n").body == "-rf everything")
  }

  static let refused: [(String, [UInt8], String)] = [
    ("missing closing ---", Array("---\nid: T-1\nBody without end\n".utf8), "no closing '---'"),
    ("malformed YAML", Array("---\nid: [unclosed\n---\nBody\n".utf8), "malformed YAML"),
    ("tab indentation", Array("---\nid: a\n\tbase: b\n---\nBody\n".utf8), "malformed YAML"),
    ("a list", Array("---\n- a\n- b\n---\nBody\n".utf8), "must be a mapping"),
    ("a scalar", Array("---\njust text\n---\nBody\n".utf8), "must be a mapping"),
    ("unknown key", Array("---\nid: T-1\ncolour: red\n---\nBody\n".utf8), "unknown frontmatter key 'colour'"),
    ("key case matters", Array("---\nID: T-1\n---\nBody\n".utf8), "unknown frontmatter key 'ID'"),
    ("empty body", Array("---\nid: T-1\n---\n".utf8), "the task body is empty"),
    ("blank body", Array("---\nid: T-1\n---\n  \n\n\t\n".utf8), "the task body is empty"),
    ("empty file", [], "the task body is empty"),
    ("nested value", Array("---\nid:\n  a: b\n---\nBody\n".utf8), "must be a single value"),
    ("list id", Array("---\nid: [a, b]\n---\nBody\n".utf8), "must be a single value"),
    ("priority not a number", Array("---\npriority: high\n---\nBody\n".utf8), "'priority' must be an integer"),
    ("depends_on nested", Array("---\ndepends_on: [[a]]\n---\nBody\n".utf8), "'depends_on' must be a list"),
    ("binary", Array("---\nid: T-1\n---\nBody".utf8) + [0, 1, 2, 0xFF], "is binary"),
    ("invalid UTF-8", Array("Body ".utf8) + [0xC3, 0x28], "not valid UTF-8"),
    ("non-scalar key", Array("---\n[a, b]: c\n---\nBody\n".utf8), "keys must be plain words"),
  ]

  @Test(arguments: refused)
  func refusedFilesSayWhyOnOneLine(name: String, bytes: [UInt8], expected: String) throws {
    let problem = try #require(refusal(bytes), "\(name) was accepted")
    #expect(problem.contains(expected), "\(name): \(problem)")
    #expect(!problem.contains("\n"), "\(name): \(problem)")
  }

  @Test func anUnknownKeyWithControlCharactersIsPrintedSafely() throws {
    let problem = try #require(refusal(Array("---\n\"a\\nb\": 1\n---\nBody\n".utf8)))
    #expect(!problem.contains("\n"))
    #expect(problem.contains("a\\u{a}b"))
  }

  /// A "billion laughs" document: nine levels of nine aliases. Expanded, it has 9^9 nodes; it must be refused
  /// quickly without expanding it.
  static let aliasBomb: String = {
    var lines = ["---", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in 1...9 {
      let refs = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
      lines.append("a\(level): &a\(level) [\(refs)]")
    }
    lines += ["---", "Body"]
    return lines.joined(separator: "\n") + "\n"
  }()

  @Test(arguments: [
    ("bomb", aliasBomb),
    ("bomb under depends_on", aliasBomb.replacingOccurrences(of: "a9: &a9", with: "depends_on: &a9")),
    ("bomb as id", aliasBomb.replacingOccurrences(of: "a9: &a9", with: "id: &a9")),
    ("bomb first", "---\ndepends_on: &x [[a, a, a], [a]]\n" + aliasBomb.dropFirst(4)),
    ("bomb as a key", aliasBomb.replacingOccurrences(of: "---\nBody", with: "? *a9\n: x\n? [y]\n: z\n---\nBody")),
    ("bomb as two keys", aliasBomb.replacingOccurrences(of: "---\nBody", with: "? *a9\n: x\n? *a8\n: z\n---\nBody")),
  ])
  func aYAMLAliasBombIsRefusedQuickly(name: String, text: String) throws {
    let start = monotonicSeconds()
    let problem = try #require(refusal(Array(text.utf8)), "\(name) was accepted")
    #expect(monotonicSeconds() - start < 2, "\(name) took too long")
    #expect(problem.contains("YAML alias"), "\(name): \(problem)")
  }

  /// Nesting deep enough to overflow a recursive reader's stack is refused by the nesting limit.
  @Test(arguments: [("[", 200_000), ("{a: ", 50_000)])
  func deepNestingIsRefusedWithoutACrash(opening: String, depth: Int) throws {
    let start = monotonicSeconds()
    let value = String(repeating: opening, count: depth)
    let problem = try #require(refusal(Array("---\nid: \(value)\n---\nBody\n".utf8)))
    #expect(problem.hasPrefix("malformed YAML frontmatter"), "\(problem.prefix(200))")
    #expect(!problem.contains("\n"))
    #expect(monotonicSeconds() - start < 5)
  }

  @Test func anchorsAndAliasesAreRefused() throws {
    let alias = try #require(refusal(Array("---\nid: T-1\nbase: *x\n---\nBody".utf8)))
    #expect(
      alias
        == "the frontmatter uses a YAML alias or anchor ('*name', '&name'), which task files do not support (line 3)")
    let anchor = try #require(refusal(Array("---\nid: &x T-1\n---\nBody".utf8)))
    #expect(anchor.hasPrefix("the frontmatter uses a YAML alias or anchor"))
    // A '*' or '&' inside a value is not an alias.
    #expect(try parse("---\nrepo: /a/*b & c\nbase: 'x *y'\n---\nBody").repo == "/a/*b & c")
  }

  @Test func theCanonicalFileRoundTrips() throws {
    var record = TaskRecord(
      id: "007", repo: "/repos/my repo: x", base: "yes", branch: "feature/a-b", taskFile: "", createdAt: "t",
      seq: 1, priority: -3, dependsOn: ["A", "B-2"])
    record.worktreePath = "/tmp/wt #1"
    let body = "First line.\n\n- item\n---\nnot frontmatter"
    let canonical = TaskFile.canonical(for: record, body: body)
    #expect(canonical.hasPrefix("---\n"))
    let file = try parse(canonical)
    #expect(file.id == "007")
    #expect(file.repo == "/repos/my repo: x")
    #expect(file.base == "yes")
    #expect(file.branch == "feature/a-b")
    #expect(file.worktreePath == "/tmp/wt #1")
    #expect(file.priority == -3)
    #expect(file.dependsOn == ["A", "B-2"])
    #expect(file.body == body)
  }

  // MARK: Reading from disk

  @Test func theIDDefaultsToTheFileNameStem() throws {
    let dir = try ScratchDirectory()
    let (file, stem) = try TaskFile.read(path: try dir.write("T-003.md", "Body\n"))
    #expect(file.id == nil)
    #expect(stem == "T-003")
    #expect(try TaskFile.read(path: try dir.write("T.v2.md", "Body\n")).stem == "T.v2")
    #expect(try TaskFile.read(path: try dir.write("noext", "Body\n")).stem == "noext")
  }

  @Test func theFrontmatterIDWinsOverTheStem() throws {
    let dir = try ScratchDirectory()
    let (file, stem) = try TaskFile.read(path: try dir.write("name.md", "---\nid: T-7\n---\nBody\n"))
    #expect(file.id == "T-7")
    #expect(stem == "name")
  }

  @Test func readingLeavesTheFileUnchanged() throws {
    let dir = try ScratchDirectory()
    let text = "---\nid: T-1\n---\r\nBody\n"
    let path = try dir.write("t.md", text)
    _ = try TaskFile.read(path: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
  }

  @Test func exactlyOneMebibyteIsAcceptedAndOneByteMoreIsRefused() throws {
    let dir = try ScratchDirectory()
    let limit = TaskFile.maximumSize
    #expect(limit == 1_048_576)
    let exact = try dir.write("exact.md", String(repeating: "x", count: limit))
    #expect(try TaskFile.read(path: exact).file.body.utf8.count == limit)
    let over = try dir.write("over.md", String(repeating: "x", count: limit + 1))
    let error = try #require(throws: QueueError.self) { try TaskFile.read(path: over) }
    #expect(error == .taskFile(path: over, problem: "is larger than 1 MiB (1048577 bytes)"))
  }

  @Test func aMissingFileOrADirectoryIsRefused() throws {
    let dir = try ScratchDirectory()
    #expect(throws: QueueError.taskFile(path: dir.path + "/nope.md", problem: "no such file")) {
      try TaskFile.read(path: dir.path + "/nope.md")
    }
    #expect(throws: QueueError.taskFile(path: dir.path, problem: "is a directory")) {
      try TaskFile.read(path: dir.path)
    }
  }

  @Test func anUnreadableFileIsRefused() throws {
    let dir = try ScratchDirectory()
    let path = try dir.write("secret.md", "Body\n")
    chmod(path, 0)
    defer { chmod(path, 0o644) }
    if getuid() == 0 {
      // root reads any file; the refusal path is covered by the directory case above.
      print("anUnreadableFileIsRefused: running as root, chmod 000 does not stop reads; checking a readable result")
      #expect(try TaskFile.read(path: path).file.body == "Body")
      return
    }
    #expect(throws: QueueError.taskFile(path: path, problem: "cannot be read (check its permissions)")) {
      try TaskFile.read(path: path)
    }
  }
}
