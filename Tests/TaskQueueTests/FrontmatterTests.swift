import TaskQueue
import TaskqTestSupport
import Testing

@testable import TaskQueue

/// The frontmatter reader and writer without a YAML library: what the Python taskq (PyYAML) and Yams
/// wrote is read as they meant it, what it writes any YAML reader reads back, and the rest is refused with
/// its line.
@Suite struct FrontmatterTests {
  func parse(_ text: String) throws -> TaskFile {
    try TaskFile.parse(Array(text.utf8), path: "t.md")
  }

  func refusal(_ text: String) -> String? {
    do {
      _ = try TaskFile.parse(Array(text.utf8), path: "t.md")
      return nil
    } catch QueueError.taskFile(_, let problem) {
      return problem
    } catch {
      Issue.record("unexpected error \(error)")
      return nil
    }
  }

  /// The repository's root, from this file's path (Tests/TaskQueueTests/FrontmatterTests.swift).
  static let root: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
  }()

  // MARK: What others wrote

  /// Every task file the real Python taskq wrote (Tests/EndToEndTests/Fixtures/python-taskq-written).
  @Test(arguments: ["T-001", "T-002", "T-003", "T-004", "T-005", "T-006", "T-007"])
  func filesWrittenByThePythonTool(id: String) throws {
    let path = Self.root + "/Tests/EndToEndTests/Fixtures/python-taskq-written/queue/tasks/\(id).md"
    let (file, stem) = try TaskFile.read(path: path)
    #expect(stem == id)
    #expect(file.id == id)
    #expect(file.repo == "/tmp/pyq/home/documents/repos/demo")
    #expect(file.base == "main")
    #expect(file.branch == nil)
    #expect(!file.body.isEmpty)
  }

  @Test func theSeedsExampleAndTheOlderPythonQueue() throws {
    let example = try TaskFile.read(path: Self.root + "/queue/tasks/example-task.md").file
    #expect(example.id == "T-EXAMPLE")
    #expect(example.repo == "sisifo")
    #expect(example.body.hasPrefix("Implement a small change with tests."))
    let t2 = try TaskFile.read(path: Self.root + "/Tests/EndToEndTests/Fixtures/python-queue/queue/tasks/T-002.md").file
    #expect(t2.branch == "feature/my-branch")
    #expect(t2.worktreePath == "/home/alice/documents/repos/worktrees/sisifo/T-002")
  }

  /// PyYAML's `yaml.dump(…, default_flow_style=False)` spellings (checked against PyYAML 6): quotes for
  /// what would read as another type, `\x`/`\u` escapes for non-ASCII (allow_unicode is off), and values
  /// longer than 80 columns folded onto indented lines, in double quotes with a `\` line join.
  @Test func pyYAMLSpellings() throws {
    let file = try parse(
      """
      ---
      id: '007'
      repo: "/home/jos\\xE9/repos/na\\xEFve \\u2603"
      base: 'yes'
      branch: 'it''s: here'
      worktree_path: /tmp/a very long path with spaces that goes on and on and on for quite
        some time/wt
      ---
      Body
      """)
    #expect(file.id == "007")
    #expect(file.repo == "/home/josé/repos/naïve ☃")
    #expect(file.base == "yes")
    #expect(file.branch == "it's: here")
    #expect(file.worktreePath == "/tmp/a very long path with spaces that goes on and on and on for quite some time/wt")
    let folded = try parse(
      """
      ---
      repo: "/tmp/caf\\xE9 with a long name that PyYAML wraps because it is longer than eighty\\
        \\ columns/x"
      worktree_path: '/tmp/a very long path with spaces that goes on and on and on for

        quite some time'
      ---
      Body
      """)
    #expect(folded.repo == "/tmp/café with a long name that PyYAML wraps because it is longer than eighty columns/x")
    #expect(folded.worktreePath == "/tmp/a very long path with spaces that goes on and on and on for\nquite some time")
  }

  /// What Yams wrote as the canonical file before (a folded single-quoted value, a block list at the key's
  /// indentation) still reads.
  @Test func yamsWrittenCanonicalFiles() throws {
    let file = try parse(
      """
      ---
      id: T-2
      repo: .
      base: main
      branch: task/T-2
      worktree_path: '/var/tmp/a very long path with spaces that goes on and on and on for
        quite some time/wt #1: x'
      priority: 5
      depends_on:
      - T-1
      - 'T-0'
      ---
      x
      """)
    #expect(
      file.worktreePath
        == "/var/tmp/a very long path with spaces that goes on and on and on for quite some time/wt #1: x")
    #expect(file.priority == 5)
    #expect(file.dependsOn == ["T-1", "T-0"])
    #expect(file.repo == ".")
  }

  @Test func commentsAndBlankLines() throws {
    let file = try parse(
      """
      ---
      # who
      id: T-1   # the id

      depends_on:   # what first
        # none of these yet
        - A  # one
        - "B" # two
      priority: -2
      ---
      Body
      """)
    #expect(file.id == "T-1")
    #expect(file.dependsOn == ["A", "B"])
    #expect(file.priority == -2)
  }

  @Test func aValueOnTheNextLine() throws {
    #expect(try parse("---\nrepo:\n  /a/b\nbase: main\n---\nx").repo == "/a/b")
  }

  @Test func noValueIsRefusedAsNoValue() throws {
    for text in [
      "---\nid:\n---\nx", "---\nid: ~\n---\nx", "---\nid: null\nbase: b\n---\nx", "---\nid:\nbase: b\n---\nx",
    ] {
      let problem = try #require(refusal(text), "\(text)")
      #expect(problem.hasPrefix("frontmatter key 'id' has no value"), "\(problem)")
    }
    #expect(try parse("---\nid: ''\n---\nx").id == "")
  }

  // MARK: Refusals name the line

  static let refused: [(String, String)] = [
    ("---\nid: T-1\nid: T-2\n---\nx", "malformed YAML frontmatter at line 3: duplicate key 'id' (first at line 2)"),
    (
      "---\nid: T-1\n  base: b\n---\nx", "malformed YAML frontmatter at line 3: a value contains ': ' (quote the value)"
    ),
    ("---\n  id: T-1\n---\nx", "malformed YAML frontmatter at line 2: this line is indented"),
    ("---\nrepo: a: b\n---\nx", "malformed YAML frontmatter at line 2: a value contains ': '"),
    ("---\nid: 'open\n---\nx", "malformed YAML frontmatter at line 2: the quoted value is not closed"),
    ("---\nid: \"bad \\q\"\n---\nx", "malformed YAML frontmatter at line 2: unknown escape '\\q'"),
    ("---\nid: \"\\u12\"\n---\nx", "malformed YAML frontmatter at line 2: '\\u' needs 4 hexadecimal digits"),
    ("---\nid: 'a' b\n---\nx", "malformed YAML frontmatter at line 2: unexpected text after the value"),
    ("---\nid: |\n  text\n---\nx", "malformed YAML frontmatter at line 2: block scalars"),
    ("---\nid: !!str 1\n---\nx", "malformed YAML frontmatter at line 2: YAML tags"),
    ("---\nid: {a: b}\n---\nx", "malformed YAML frontmatter at line 2: flow mappings"),
    ("---\ndepends_on: [a, {b: c}]\n---\nx", "malformed YAML frontmatter at line 2: flow mappings"),
    ("---\ndepends_on: [a,, b]\n---\nx", "malformed YAML frontmatter at line 2: the list has an empty item"),
    ("---\ndepends_on: [a b c\n  d]\n---\nx", "malformed YAML frontmatter at line 2: the list has no closing ']'"),
    ("---\ndepends_on:\n- a\n  b: c\n---\nx", "malformed YAML frontmatter at line 4: a value contains"),
    ("---\ndepends_on:\n  - - a\n---\nx", "malformed YAML frontmatter at line 3: nested block lists"),
    ("---\ndepends_on:\n  -\n---\nx", "malformed YAML frontmatter at line 3: a list item has no value"),
    ("---\nid: - a\n---\nx", "malformed YAML frontmatter at line 2: a list item cannot follow a key"),
    ("---\nid:T-1\n---\nx", "the frontmatter must be a mapping of keys to values ('key: value') (line 2)"),
    ("---\n? id\n: x\n---\nx", "malformed YAML frontmatter at line 2: complex keys"),
    ("---\nid: *x\n---\nx", "the frontmatter uses a YAML alias or anchor"),
    ("---\ndepends_on: [&x a]\n---\nx", "the frontmatter uses a YAML alias or anchor"),
    (
      "---\nbase: main\ncolour: red\n---\nx",
      "unknown frontmatter key 'colour' (allowed: id, repo, base, branch, worktree_path, priority, depends_on) (line 3)"
    ),
    ("---\nid: [a]\n---\nx", "frontmatter key 'id' must be a single value (line 2)"),
    ("---\npriority: 1.5\n---\nx", "frontmatter key 'priority' must be an integer (line 2)"),
  ]

  @Test(arguments: refused)
  func refusalsSayWhatAndWhere(text: String, expected: String) throws {
    let problem = try #require(refusal(text), "accepted: \(text)")
    #expect(problem.hasPrefix(expected), "\(problem)")
    #expect(!problem.contains("\n"))
  }

  @Test func theFileIsNamedInTheError() throws {
    let error = try #require(throws: QueueError.self) {
      try TaskFile.parse(Array("---\nid: [x\n---\nBody".utf8), path: "queue/tasks/T-9.md")
    }
    guard case .taskFile(let path, let problem) = error else {
      Issue.record("\(error)")
      return
    }
    #expect(path == "queue/tasks/T-9.md")
    #expect(problem == "malformed YAML frontmatter at line 2: the list has no closing ']' on its line")
  }

  // MARK: Writing

  static let awkward: [String] = [
    "T-1", "007", "1.0", "yes", "No", "null", "~", "", " lead", "trail ", "a: b", "a #b", "#x", "-x", "- x", "[x]",
    "a,b", "{x}", "*x", "&x", "!x", "|", ">", "'", "it's", "\"q\"", "back\\slash", "tab\there", "line\nbreak",
    "cr\r", "bell\u{7}", "nel\u{85}", "ls\u{2028}", "bom\u{FEFF}", "café ☃", "@x", "`x", "%x", "?x", "x:",
    ".inf", "+1", "0x1F", "2026-11-29", "= x", "=",
  ]

  @Test(arguments: awkward)
  func everyStringIsWrittenSoItReadsBack(text: String) throws {
    let spelled = Frontmatter.scalar(text)
    #expect(!spelled.contains("\n"))
    let file = try parse("---\nrepo: \(spelled)\ndepends_on:\n\(Frontmatter.blockList([text]))---\nBody")
    #expect(file.repo == text, "\(spelled)")
    #expect(file.dependsOn == [text], "\(spelled)")
  }

  @Test func plainWhenThatIsSafe() {
    #expect(Frontmatter.scalar("T-1") == "T-1")
    #expect(Frontmatter.scalar("/home/u/repos/x") == "/home/u/repos/x")
    #expect(Frontmatter.scalar("feature/a-b") == "feature/a-b")
    #expect(Frontmatter.scalar("007") == "'007'")
    #expect(Frontmatter.scalar("it's: x") == "'it''s: x'")
    #expect(Frontmatter.scalar("a\nb") == "\"a\\nb\"")
    #expect(Frontmatter.scalar("\u{7}") == "\"\\x07\"")
  }

  @Test func theCanonicalFileIsWhatYamsWrote() {
    var record = TaskRecord(
      id: "T-2", repo: ".", base: "main", branch: "task/T-2", taskFile: "", createdAt: "t", seq: 1, priority: 5,
      dependsOn: ["T-1"])
    record.worktreePath = "/tmp/wt #1"
    #expect(
      TaskFile.canonical(for: record, body: "x")
        == "---\nid: T-2\nrepo: .\nbase: main\nbranch: task/T-2\nworktree_path: '/tmp/wt #1'\npriority: 5\ndepends_on:\n- T-1\n---\nx\n"
    )
  }
}
