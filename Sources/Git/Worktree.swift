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
  /// libgit2 requires that `path` does not exist and that its parent does; the parent is created here. On
  /// failure libgit2 may leave `.git/worktrees/<name>` behind; it is removed so that a later attempt works.
  public func addWorktree(named name: String, at path: String, branch: String) throws {
    var ref: OpaquePointer?
    try GitError.check(git_reference_lookup(&ref, pointer, "refs/heads/" + branch), "git_reference_lookup")
    defer { git_reference_free(ref) }
    try createDirectories(parentOf: path)
    // libgit2 creates `<common dir>/worktrees` and fails when another worker created it a moment before
    // ("directory exists"): two workers adding the first worktrees at once. Made here, the race is gone.
    mkdir(commonDirectory + "worktrees", 0o755)
    var options = git_worktree_add_options()
    try GitError.check(
      git_worktree_add_options_init(&options, UInt32(GIT_WORKTREE_ADD_OPTIONS_VERSION)),
      "git_worktree_add_options_init")
    options.ref = ref
    var worktree: OpaquePointer?
    let rc = git_worktree_add(&worktree, pointer, name, path, &options)
    if rc < 0 {
      let error: GitError
      do {
        try GitError.check(rc, "git_worktree_add")
        error = GitError.internal("git_worktree_add")
      } catch let thrown as GitError {
        error = thrown
      }
      // Leave no half-registered worktree behind.
      if access(path, F_OK) != 0 { removeTree(commonDirectory + "worktrees/" + name) }
      throw error
    }
    git_worktree_free(worktree)
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
    guard try worktreeNames().contains(name) else { return nil }
    var worktree: OpaquePointer?
    let rc = git_worktree_lookup(&worktree, pointer, name)
    try GitError.check(rc, "git_worktree_lookup")
    defer { git_worktree_free(worktree) }
    return string(git_worktree_path(worktree))
  }

  /// Removes linked worktree `name`: its working directory and its administrative files. The branch stays.
  public func removeWorktree(named name: String) throws {
    guard try worktreeNames().contains(name) else { return }
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
    var broken: [String] = []
    for name in try worktreeNames() {
      let head = commonDirectory + "worktrees/" + name + "/HEAD"
      guard let data = FileManager.default.contents(atPath: head),
        let text = String(data: data, encoding: .utf8)?.split(whereSeparator: \.isNewline).first.map(String.init),
        !text.isEmpty
      else {
        broken.append(name)
        continue
      }
      if text.hasPrefix("ref: ") { continue }
      // A HEAD naming no readable commit is exactly the broken registration looked for here.
      guard let id = ObjectID(hex: text), (try? commit(id)) != nil else {
        broken.append(name)
        continue
      }
    }
    return broken
  }
}
