import CLibGit2

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

extension Repository {
  /// Adds a linked worktree called `name` at `path`, checked out on the existing local branch `branch`.
  ///
  /// What `git_worktree_add` does, with the same files, except its check that the branch is not checked out
  /// elsewhere: libgit2 opens every linked worktree as a whole repository for it (configuration and all),
  /// so each add cost 0.15 ms per worktree already there (15 ms at 100, 34 ms at 200, measured here); this
  /// one reads each worktree's `HEAD` file (``isCheckedOut(branch:)``).
  ///
  /// `path` must not exist; its parent is created. On failure nothing of the registration is left behind
  /// (`<common dir>/worktrees/<name>`, and `path` when this call made it).
  public func addWorktree(named name: String, at path: String, branch: String) throws {
    let refName = "refs/heads/" + branch
    var ref: OpaquePointer?
    try GitError.check(git_reference_lookup(&ref, pointer, refName), "git_reference_lookup")
    git_reference_free(ref)
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
      throw GitError(code: .invalid, message: "invalid worktree name '\(name)'", function: "git_worktree_add")
    }
    if try isCheckedOut(branch: branch) {
      throw GitError(code: .generic, message: "reference is already checked out", function: "git_worktree_add")
    }
    try createDirectories(parentOf: path)
    // Made here: two workers adding the first worktrees at once both find it missing.
    mkdir(worktreesDirectory, 0o755)
    let admin = worktreesDirectory + name
    guard mkdir(admin, 0o755) == 0 else {
      throw Self.systemError("failed to make directory '\(admin)'", function: "git_worktree_add")
    }
    var madeCheckout = false
    do {
      // Until the checkout is complete, the registration says it is being made, and where: a process
      // killed before the end leaves a half-made registration (``isHalfMadeWorktree(named:)``) whose repair
      // knows which directory is its unfinished checkout (``removeHalfMadeWorktree(named:)``).
      try Self.writeFile(admin + "/" + Self.addingMarker, path + "\n")
      guard mkdir(path, 0o755) == 0 else {
        throw Self.systemError("failed to make directory '\(path)'", function: "git_worktree_add")
      }
      madeCheckout = true
      // The paths as libgit2 writes them: resolved, directories with a trailing slash.
      let adminPath = try Self.resolvedDirectory(admin)
      let checkoutPath = try Self.resolvedDirectory(path)
      try Self.writeFile(checkoutPath + ".git", "gitdir: \(adminPath)\n")
      try Self.writeFile(adminPath + "commondir", try Self.resolvedDirectory(commonDirectory) + "\n")
      try Self.writeFile(adminPath + "gitdir", checkoutPath + ".git\n")
      try Self.writeFile(adminPath + "HEAD", "ref: \(refName)\n")
      var worktree: OpaquePointer?
      try GitError.check(git_repository_open(&worktree, checkoutPath), "git_repository_open")
      defer { git_repository_free(worktree) }
      var options = git_checkout_options()
      try GitError.check(
        git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "git_checkout_options_init")
      try GitError.check(git_checkout_head(worktree, &options), "git_checkout_head")
      unlink(admin + "/" + Self.addingMarker)
    } catch {
      removeTree(admin)
      if madeCheckout { removeTree(path) }
      throw error
    }
  }

  /// The file in `<common dir>/worktrees/<name>/` that says the worktree is being added, holding the
  /// checkout's path: removed once the checkout is complete. git ignores it.
  static let addingMarker = "taskq-adding"

  /// Whether local branch `branch` is the `HEAD` of the main working tree or of a linked worktree, read
  /// from their `HEAD` files (a registration without one is skipped: it checks nothing out).
  public func isCheckedOut(branch: String) throws -> Bool {
    let wanted = "ref: refs/heads/\(branch)"
    var heads = isBare ? [] : [String(worktreesDirectory.dropLast("worktrees/".count)) + "HEAD"]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: worktreesDirectory)) ?? []
    where !name.hasPrefix(".") {
      heads.append(worktreesDirectory + name + "/HEAD")
    }
    return heads.contains { head in
      guard let data = FileManager.default.contents(atPath: head) else { return false }
      var text = String(decoding: data, as: UTF8.self)
      while let last = text.last, last.isWhitespace { text.removeLast() }
      return text == wanted
    }
  }

  /// Where the registrations of linked worktrees live: `<common dir>/worktrees/`.
  var worktreesDirectory: String {
    (commonDirectory.hasSuffix("/") ? commonDirectory : commonDirectory + "/") + "worktrees/"
  }

  /// The error of a system call that just failed: `what`, then the system's reason.
  private static func systemError(_ what: String, function: String) -> GitError {
    let reason = errno == EEXIST ? "directory exists" : String(cString: strerror(errno))
    return GitError(code: errno == EEXIST ? .exists : .generic, message: "\(what): \(reason)", function: function)
  }

  /// `path` resolved (symbolic links, `.` and `..`), with a trailing slash.
  static func resolvedDirectory(_ path: String) throws -> String {
    guard let resolved = realpath(path, nil) else {
      throw Self.systemError("cannot resolve '\(path)'", function: "realpath")
    }
    defer { free(resolved) }
    let text = String(cString: resolved)
    return text.hasSuffix("/") ? text : text + "/"
  }

  /// Creates `path` (which must not exist) holding `text`.
  private static func writeFile(_ path: String, _ text: String) throws {
    let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw Self.systemError("cannot create '\(path)'", function: "open") }
    defer { Glibc.close(fd) }
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
      let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw Self.systemError("cannot write '\(path)'", function: "write") }
      done += n
    }
  }

  /// Whether `name` is a linked worktree libgit2 lists (``worktreeNames()``): its directory under
  /// `<common dir>/worktrees/` holds `commondir`, `gitdir` and `HEAD`. Looks at that one registration,
  /// where listing them all costs a look at every worktree.
  func isRegisteredWorktree(_ name: String) -> Bool {
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
    let root = worktreesDirectory + name + "/"
    var info = stat()
    return ["commondir", "gitdir", "HEAD"].allSatisfy { stat(root + $0, &info) == 0 }
  }

  /// The names of this repository's linked worktrees.
  public func worktreeNames() throws -> [String] {
    var list = git_strarray()
    try GitError.check(git_worktree_list(&list, pointer), "git_worktree_list")
    defer { git_strarray_dispose(&list) }
    return (0..<list.count).compactMap { string(list.strings[$0]) }
  }

  /// The path of linked worktree `name`, or `nil` when there is none.
  public func worktreePath(named name: String) throws -> String? {
    // libgit2 1.5 answers a lookup of an unknown worktree with a generic error, not GIT_ENOTFOUND.
    guard isRegisteredWorktree(name) else { return nil }
    var worktree: OpaquePointer?
    let rc = git_worktree_lookup(&worktree, pointer, name)
    try GitError.check(rc, "git_worktree_lookup")
    defer { git_worktree_free(worktree) }
    return string(git_worktree_path(worktree))
  }

  /// Removes linked worktree `name`: its working directory and its administrative files. The branch stays.
  public func removeWorktree(named name: String) throws {
    guard isRegisteredWorktree(name) else { return }
    var worktree: OpaquePointer?
    let rc = git_worktree_lookup(&worktree, pointer, name)
    try GitError.check(rc, "git_worktree_lookup")
    defer { git_worktree_free(worktree) }
    var options = git_worktree_prune_options()
    try GitError.check(
      git_worktree_prune_options_init(&options, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)),
      "git_worktree_prune_options_init")
    options.flags =
      GIT_WORKTREE_PRUNE_VALID.rawValue | GIT_WORKTREE_PRUNE_LOCKED.rawValue
      | GIT_WORKTREE_PRUNE_WORKING_TREE.rawValue
    try GitError.check(git_worktree_prune(worktree, &options), "git_worktree_prune")
  }

  private func createDirectories(parentOf path: String) throws {
    var components = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
    var current = path.hasPrefix("/") ? "" : "."
    while let first = components.first {
      components = components.dropFirst()
      current += "/" + first
      if mkdir(current, 0o755) != 0 && errno != EEXIST {
        throw GitError(
          code: .generic, message: "cannot create directory '\(current)': \(String(cString: strerror(errno)))",
          function: "mkdir")
      }
    }
  }
}

extension Repository {
  /// Linked worktrees whose registration is half-written (a process killed inside `git_worktree_add`):
  /// their `HEAD` is missing, empty, or names no commit. `git fsck` reports them ("HEAD points at nothing").
  public func brokenWorktreeNames() throws -> [String] {
    try worktreeNames().filter { !isReadableWorktreeHead($0) }
  }

  /// Whether linked worktree `name`'s `HEAD` names a branch, or a commit that can be read.
  func isReadableWorktreeHead(_ name: String) -> Bool {
    let head = worktreesDirectory + name + "/HEAD"
    guard let data = FileManager.default.contents(atPath: head),
      let text = String(data: data, encoding: .utf8)?.split(whereSeparator: \.isNewline).first.map(String.init),
      !text.isEmpty
    else { return false }
    if text.hasPrefix("ref: ") { return true }
    // A HEAD naming no readable commit is exactly the broken registration looked for here.
    guard let id = ObjectID(hex: text), (try? commit(id)) != nil else { return false }
    return true
  }
}
