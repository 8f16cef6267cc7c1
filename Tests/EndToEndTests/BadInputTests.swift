import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bad input gets one clear line on stderr, a non-zero exit, and the queue ref unchanged.
@Suite struct BadInputTests {
  /// A queue with a task in each status a command can meet: T-1 todo, T-2 review, T-3 failed, T-4 done,
  /// T-5 cancelled, plus files to feed `--task-file`.
  final class Fixture {
    let repository: ScratchRepository
    let files: String
    let tip: String?

    init() throws {
      repository = try ScratchRepository()
      let store = try repository.store()
      for (id, status) in [
        ("T-1", TaskStatus.todo), ("T-2", .review), ("T-3", .failed), ("T-4", .done), ("T-5", .cancelled),
      ] {
        try repository.addTask(id, store: store)
        try repository.drive(id, to: status, store: store)
      }
      files = repository.directory.path + "/files"
      let d = repository.directory
      try d.write("files/malformed.md", "---\nid: [unclosed\n---\nBody\n")
      try d.write("files/unknown-key.md", "---\nid: U-1\ncolour: red\n---\nBody\n")
      try d.write("files/empty-body.md", "---\nid: U-2\n---\n\n")
      try d.write("files/no-close.md", "---\nid: U-3\nBody without the closing line\n")
      try d.write("files/list.md", "---\n- a\n- b\n---\nBody\n")
      try d.write("files/bad-id.md", "---\nid: ../etc\n---\nBody\n")
      try d.write("files/alias.md", "---\na: &a [x, x]\nb: &b [*a, *a]\n? *b\n: y\n---\nBody\n")
      try d.write("files/crlf-unknown.md", "---\r\nid: U-4\r\nfoo: bar\r\n---\r\nBody\r\n")
      try d.write("files/big.md", String(repeating: "x", count: TaskFile.maximumSize + 1))
      try d.write("files/U-5.md", "Body\n")
      try d.write("files/empty-worktree.md", "---\nid: U-27\nworktree_path: ''\n---\nBody\n")
      try Data([0x2D, 0x2D, 0x2D, 0x0A, 0x00, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: files + "/binary.md"))
      try FileManager.default.createDirectory(atPath: files + "/a-directory.md", withIntermediateDirectories: true)
      try FileManager.default.createDirectory(
        atPath: repository.directory.path + "/not-a-repo", withIntermediateDirectories: true)
      tip = try repository.queueTip()
    }
  }

  struct Case: CustomStringConvertible, Sendable {
    var name: String
    var arguments: [String]
    /// What the single stderr line must start with (after `error: `).
    var message: String
    var input: String? = nil
    var description: String { name }
  }

  static func add(_ id: String) -> [String] { ["add", "--id", id, "--task", "Do it."] }

  static let unknownIDs: [Case] = [
    Case(
      name: "approve unknown", arguments: ["approve", "--id", "NOPE"],
      message: "task 'NOPE' not found (see 'git taskq status')"),
    Case(name: "cancel unknown", arguments: ["cancel", "--id", "NOPE"], message: "task 'NOPE' not found"),
    Case(name: "retry unknown", arguments: ["retry", "--id", "NOPE"], message: "task 'NOPE' not found"),
    Case(name: "remove unknown", arguments: ["remove", "--id", "NOPE"], message: "task 'NOPE' not found"),
    Case(name: "show unknown", arguments: ["show", "--id", "NOPE"], message: "task 'NOPE' not found"),
    Case(name: "show --json unknown", arguments: ["show", "--id", "NOPE", "--json"], message: "task 'NOPE' not found"),
    Case(name: "status unknown", arguments: ["status", "--id", "NOPE"], message: "task 'NOPE' not found"),
    Case(
      name: "status --json unknown", arguments: ["status", "--id", "NOPE", "--json"], message: "task 'NOPE' not found"),
    Case(name: "log unknown", arguments: ["log", "--id", "NOPE"], message: "task 'NOPE' not found"),
  ]

  /// Illegal transitions say the status and what the command needs; duplicates are refused.
  static let transitions: [Case] = [
    Case(
      name: "approve todo", arguments: ["approve", "--id", "T-1"],
      message: "cannot approve task 'T-1': it is 'todo' (approve needs 'review')"),
    Case(
      name: "approve failed", arguments: ["approve", "--id", "T-3"],
      message: "cannot approve task 'T-3': it is 'failed' (approve needs 'review')"),
    Case(
      name: "approve done", arguments: ["approve", "--id", "T-4"], message: "cannot approve task 'T-4': it is 'done'"),
    Case(
      name: "retry todo", arguments: ["retry", "--id", "T-1"],
      message: "cannot retry task 'T-1': it is 'todo' (retry needs 'failed')"),
    Case(
      name: "retry review", arguments: ["retry", "--id", "T-2"],
      message: "cannot retry task 'T-2': it is 'review' (retry needs 'failed')"),
    Case(
      name: "cancel done", arguments: ["cancel", "--id", "T-4"],
      message:
        "cannot cancel task 'T-4': it is 'done' (cancel needs 'todo' or 'planning' or 'building' or 'review' or 'failed')"
    ),
    Case(
      name: "cancel cancelled", arguments: ["cancel", "--id", "T-5"],
      message: "cannot cancel task 'T-5': it is 'cancelled'"),
    Case(name: "duplicate id", arguments: add("T-1"), message: "task 'T-1' already exists"),
    Case(
      name: "duplicate id from a file's stem", arguments: ["add", "--task-file", "FILES/U-5.md", "--id", "T-2"],
      message: "task 'T-2' already exists"),
  ]

  /// Ids that are not safe as a ref component, branch, directory and container name.
  static let ids: [Case] = [
    Case(
      name: "id ../x", arguments: add("../x"), message: "invalid task id '../x': it must start with a letter or digit"),
    Case(name: "id a/b", arguments: add("a/b"), message: "invalid task id 'a/b': only letters"),
    Case(
      name: "id -x", arguments: ["add", "--id=-x", "--task", "Do it."], message: "invalid task id '-x': it must start"),
    Case(name: "id a b", arguments: add("a b"), message: "invalid task id 'a b'"),
    Case(name: "id with newline", arguments: add("a\nb"), message: "invalid task id 'a\\u{a}b'"),
    Case(name: "id with escape", arguments: add("a\u{1B}[31mb"), message: "invalid task id 'a\\u{1b}[31mb'"),
    Case(name: "id é", arguments: add("é"), message: "invalid task id 'é'"),
    Case(name: "id 65 chars", arguments: add(String(repeating: "a", count: 65)), message: "invalid task id 'aaaa"),
    Case(name: "id x.lock", arguments: add("x.lock"), message: "invalid task id 'x.lock': it must not end in '.lock'"),
    Case(name: "id x.", arguments: add("x."), message: "invalid task id 'x.': it must not end in '.'"),
    Case(name: "id a..b", arguments: add("a..b"), message: "invalid task id 'a..b': it must not contain '..'"),
    Case(name: "id a@{b", arguments: add("a@{b"), message: "invalid task id 'a@{b'"),
    Case(name: "id empty", arguments: add(""), message: "invalid task id '': it is empty"),
    Case(
      name: "id from frontmatter", arguments: ["add", "--task-file", "FILES/bad-id.md"],
      message: "invalid task id '../etc'"),
    Case(name: "cancel ../x", arguments: ["cancel", "--id", "../x"], message: "invalid task id '../x'"),
    Case(name: "show a/b", arguments: ["show", "--id", "a/b"], message: "invalid task id 'a/b'"),
    Case(
      name: "status --id with newline", arguments: ["status", "--id", "a\nb"], message: "invalid task id 'a\\u{a}b'"),
    Case(name: "log --id a@{b", arguments: ["log", "--id", "a@{b"], message: "invalid task id 'a@{b'"),
  ]

  static let taskFiles: [Case] = [
    Case(
      name: "missing file", arguments: ["add", "--task-file", "FILES/nope.md"],
      message: "task file 'FILES/nope.md': no such file"),
    Case(
      name: "directory as file", arguments: ["add", "--task-file", "FILES/a-directory.md"],
      message: "task file 'FILES/a-directory.md': is a directory"),
    Case(
      name: "malformed YAML", arguments: ["add", "--task-file", "FILES/malformed.md"],
      // One position, counted in the file, and no second "error".
      message:
        "task file 'FILES/malformed.md': malformed YAML frontmatter at line 2: the list has no closing ']' on its line"
    ),
    Case(
      name: "unknown key", arguments: ["add", "--task-file", "FILES/unknown-key.md"],
      message: "task file 'FILES/unknown-key.md': unknown frontmatter key 'colour'"),
    Case(
      name: "unknown key with CRLF", arguments: ["add", "--task-file", "FILES/crlf-unknown.md"],
      message: "task file 'FILES/crlf-unknown.md': unknown frontmatter key 'foo'"),
    Case(
      name: "empty body", arguments: ["add", "--task-file", "FILES/empty-body.md"],
      message: "task file 'FILES/empty-body.md': the task body is empty"),
    Case(
      name: "no closing ---", arguments: ["add", "--task-file", "FILES/no-close.md"],
      message: "task file 'FILES/no-close.md': the frontmatter has no closing '---' line"),
    Case(
      name: "non-mapping frontmatter", arguments: ["add", "--task-file", "FILES/list.md"],
      message: "task file 'FILES/list.md': the frontmatter must be a mapping"),
    Case(
      name: "binary file", arguments: ["add", "--task-file", "FILES/binary.md", "--id", "U-6"],
      message: "task file 'FILES/binary.md': is binary"),
    Case(
      name: "alias bomb", arguments: ["add", "--task-file", "FILES/alias.md", "--id", "U-7"],
      message: "task file 'FILES/alias.md': the frontmatter uses a YAML alias"),
    Case(
      name: "1 MiB + 1", arguments: ["add", "--task-file", "FILES/big.md", "--id", "U-8"],
      message: "task file 'FILES/big.md': is larger than 1 MiB"),
    Case(
      name: "stdin 1 MiB + 1", arguments: ["add", "--task-file", "-", "--id", "U-9"],
      message: "task file '<stdin>': is larger than 1 MiB",
      input: String(repeating: "y", count: TaskFile.maximumSize + 1)),
    Case(
      name: "stdin empty", arguments: ["add", "--task-file", "-", "--id", "U-9"],
      message: "task file '<stdin>': the task body is empty", input: ""),
    Case(
      name: "file path with newline", arguments: ["add", "--task-file", "FILES/a\nb.md"],
      message: "task file 'FILES/a\\u{a}b.md': no such file"),
    Case(
      name: "--task and --task-file", arguments: ["add", "--id", "U-10", "--task", "x", "--task-file", "FILES/U-5.md"],
      message: "--task and --task-file cannot be used together"),
    Case(name: "neither --task nor --task-file", arguments: ["add", "--id", "U-11"], message: "nothing to add"),
    Case(name: "--task without --id", arguments: ["add", "--task", "x"], message: "--id is required with --task"),
    Case(
      name: "empty --task", arguments: ["add", "--id", "U-12", "--task", " \n "], message: "the task text is empty"),
  ]

  static let values: [Case] = [
    Case(
      name: "--depends-on unknown", arguments: add("U-13") + ["--depends-on", "T-1,NOPE"],
      message: "task 'U-13' depends on 'NOPE', which is not in the queue"),
    Case(
      name: "--depends-on itself", arguments: add("U-14") + ["--depends-on", "U-14"],
      message: "task 'U-14' cannot depend on itself"),
    Case(
      name: "--depends-on invalid id", arguments: add("U-15") + ["--depends-on", "../x"],
      message: "invalid task id '../x'"),
    Case(
      name: "--branch a..b", arguments: add("U-16") + ["--branch", "a..b"],
      message: "invalid value 'a..b' for --branch: expected a valid git branch name"),
    Case(name: "--branch -x", arguments: add("U-17") + ["--branch=-x"], message: "invalid value '-x' for --branch"),
    Case(
      name: "--worktree-path empty", arguments: add("U-26") + ["--worktree-path", ""],
      message: "invalid value '' for --worktree-path: expected a directory path"),
    Case(
      name: "worktree_path empty in the frontmatter", arguments: ["add", "--task-file", "FILES/empty-worktree.md"],
      message: "invalid value '' for --worktree-path"),
    Case(
      name: "--repo missing path", arguments: add("U-18") + ["--repo", "/nonexistent/repo"],
      message: "repository '/nonexistent/repo' not found: no such directory"),
    Case(
      name: "--repo missing short name", arguments: add("U-19") + ["--repo", "nosuchrepo"],
      message: "repository 'nosuchrepo' not found: no directory 'ROOT/nosuchrepo'"),
    Case(
      name: "--repo not a repository", arguments: add("U-20") + ["--repo", "ROOT/not-a-repo"],
      message: "repository 'ROOT/not-a-repo' not found: 'ROOT/not-a-repo' is not a git repository"),
    Case(
      name: "--repo with newline", arguments: add("U-21") + ["--repo", "/no\nsuch"],
      message: "repository '/no\\u{a}such' not found"),
    Case(
      name: "--base missing", arguments: add("U-22") + ["--base", "nonexistent"],
      message: "base branch 'nonexistent' does not exist in 'REPO' (pass --base, or create it)"),
    Case(name: "--base -x", arguments: add("U-23") + ["--base=-x"], message: "base branch '-x' does not exist"),
    Case(
      name: "--base with newline", arguments: add("U-24") + ["--base", "a\nb"],
      message: "base branch 'a\\u{a}b' does not exist"),
    Case(
      name: "--base a tree, not a commit", arguments: add("U-25") + ["--base", "main^{tree}"],
      message: "base branch 'main^{tree}' does not exist"),
  ]

  /// One fixture per group (cases of a group run one after another on it; the groups run in parallel).
  @Test(arguments: [
    ("unknown ids", unknownIDs), ("transitions", transitions), ("ids", ids), ("task files", taskFiles),
    ("values", values),
  ])
  func refusedWithOneLineAndTheRefUnchanged(group: String, cases: [Case]) throws {
    let fixture = try Fixture()
    let repository = fixture.repository
    let root = repository.directory.path
    func substitute(_ text: String) -> String {
      text.replacingOccurrences(of: "FILES", with: fixture.files).replacingOccurrences(of: "ROOT", with: root)
        .replacingOccurrences(of: "REPO", with: repository.path)
    }
    let before = try repository.objectCount()
    for c in cases {
      let tip = try repository.queueTip()
      let result = try repository.taskq(
        c.arguments.map(substitute), environment: ["TASKQ_REPOS_ROOT": root], input: c.input)
      #expect(result.status == 1, "\(c.name): \(result.summary)")
      #expect(result.stderrLines.count == 1, "\(c.name): \(result.stderrLines)")
      let expected = "error: " + substitute(c.message)
      #expect(result.stderrLines.first?.hasPrefix(expected) == true, "\(c.name): \(result.stderrText) vs \(expected)")
      #expect(!result.stderrText.contains("Fatal error") && !result.stderrText.contains("Stack"), "\(c.name)")
      #expect(result.stdoutText.isEmpty, "\(c.name): \(result.stdoutText)")
      #expect(try repository.queueTip() == tip, "\(c.name) moved the queue")
    }
    #expect(try repository.objectCount() == before, "\(group): objects were written")
  }

  /// Usage errors, git's way: `error: …` in lowercase first, then the usage with `git taskq`; exit 64 for
  /// every one of them, whether the parser, a validation or a setting given as a flag finds it.
  @Test(arguments: [
    (["add", "--id", "-x", "--task", "x"], "error: missing value for '--id <ID>'"),
    (
      ["add", "--id", "U-1", "--task", "x", "--priority", "high"],
      "error: the value 'high' is invalid for '--priority <N>'"
    ),
    (["add", "--bogus"], "error: unknown option '--bogus'"),
    // A suggestion only when it is close: never '--id' for '--prio'.
    (["add", "--prio", "3"], "error: unknown option '--prio'; did you mean '--priority'?"),
    (["status", "--jsn"], "error: unknown option '--jsn'; did you mean '--json'?"),
    (["approve"], "error: missing expected argument '--id <ID>'"),
    (["approve", "--id"], "error: missing value for '--id <ID>'"),
    (["cancel", "--id", "T-1", "extra"], "error: unexpected argument 'extra'"),
    (["log", "-n", "0"], "error: -n must be a positive number"),
    // Negative numbers reach their validation, which names the value's problem.
    (["log", "-n", "-1"], "error: -n must be a positive number"),
    (["run", "--max-parallel", "-1"], "error: --max-parallel must be at least 1"),
    (["run", "--poll", "-2"], "error: --poll must be a positive number of seconds"),
    (["status", "--watch", "-3"], "error: --watch must be a positive number of seconds"),
    (
      ["run", "--runtime", "kubernetes"],
      "error: invalid value 'kubernetes' for --runtime: expected 'docker' or 'local'"
    ),
    (
      ["status", "--color=sometimes"],
      "error: the value 'sometimes' is invalid for '--color <WHEN>'. Please provide one of 'auto', 'always' or 'never'."
    ),
    (["stauts"], "error: 'stauts' is not a taskq command. The most similar command is 'status'."),
    (["apprve", "--id", "T-1"], "error: 'apprve' is not a taskq command. The most similar command is 'approve'."),
    (["frobnicate"], "error: 'frobnicate' is not a taskq command. See 'git taskq help'."),
    (["help", "nosuch"], "error: no help for 'nosuch': it is not a taskq command. See 'git taskq help'."),
  ])
  func usageErrorsExit64(arguments: [String], firstLine: String) throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let tip = try repository.queueTip()
    let result = try repository.taskq(arguments)
    #expect(result.status == 64, "\(arguments): \(result.summary)")
    #expect(result.stderrLines.first == firstLine, "\(arguments): \(result.stderrText)")
    #expect(result.stderrLines.dropFirst().allSatisfy { !$0.hasPrefix("error: ") && !$0.contains("git-taskq") })
    #expect(!result.stderrText.contains("Fatal error"))
    #expect(result.stdoutText.isEmpty)
    #expect(try repository.queueTip() == tip)
  }

  @Test func aParserErrorEndsWithTheUsageOfItsCommand() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("retry")
    #expect(
      result.stderrLines == [
        "error: missing expected argument '--id <ID>'", "usage: git taskq retry --id <ID>", "See 'git taskq retry -h'.",
      ])
  }

  @Test func aNegativePriorityIsAValue() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "N-1", "--task", "x", "--priority", "-3")
    #expect(try repository.store().snapshot().record("N-1")?.priority == -3)
  }

  @Test func anUnreadableFileIsRefused() throws {
    let fixture = try Fixture()
    let path = try fixture.repository.directory.write("files/secret.md", "Body\n")
    chmod(path, 0)
    defer { chmod(path, 0o644) }
    if access(path, R_OK) == 0 {
      // Root reads a file whatever its mode; the refusal of what cannot be read is covered by the
      // directory case of the table.
      print("BadInputTests.anUnreadableFileIsRefused: skipped, running as root (mode 000 does not stop reads)")
      return
    }
    let result = try fixture.repository.taskq("add", "--task-file", path, "--id", "U-1")
    #expect(result.status == 1)
    #expect(result.stderrLines == ["error: task file '\(path)': cannot be read (check its permissions)"])
    #expect(try fixture.repository.queueTip() == fixture.tip)
  }

  @Test func aTaskBodyThatBeginsWithADashIsTheDescriptionNotAFlag() throws {
    let fixture = try Fixture()
    let result = try fixture.repository.taskq("add", "--id", "U-1", "--task", "--help me with -rf")
    #expect(result.status == 0, "\(result.summary)")
    let show = try fixture.repository.taskqOK("show", "--id", "U-1", "--json")
    #expect((try show.jsonObject()["task_file"] as? String)?.hasSuffix("---\n--help me with -rf\n") == true)
  }

  @Test func aNewerQueueFormatIsRefusedByEveryCommand() throws {
    let fixture = try Fixture()
    let repository = fixture.repository
    try repository.writeQueueCommitWithCLI(meta: "{\"format\": 2, \"next_seq\": 9}\n")
    let tip = try repository.queueTip()
    for arguments in [
      ["status"], ["status", "--json"], ["show", "--id", "T-1"], ["cancel", "--id", "T-1"], Self.add("U-1"),
      ["remove", "--id", "T-5"],
    ] {
      let result = try repository.taskq(arguments)
      #expect(result.status == 1, "\(arguments): \(result.summary)")
      #expect(
        result.stderrLines == [
          "error: the queue uses storage format 2, this git-taskq reads up to 1 (upgrade git-taskq)"
        ],
        "\(arguments): \(result.stderrText)")
    }
    #expect(try repository.queueTip() == tip)
  }
}
