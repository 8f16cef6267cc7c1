import Git
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Merges a task's branch into its base in the task's repository, for `approve --merge`: a fast-forward or
/// a clean merge, or nothing at all and a refusal that says what to run instead.
///
/// A fast-forward of a base that no working tree has checked out is a compare-and-swap of the base ref
/// (libgit2), so it never loses a commit that arrives meanwhile. Anything that must touch a working tree
/// (a fast-forward of a checked-out base, a merge commit) runs `git merge` in the repository's main
/// working tree, and only when the base is the branch checked out there and that tree is clean: git then
/// does what it does for the user, hooks and all, and a conflicting merge is aborted.
///
/// ``plan()`` makes every check that ``merge()`` makes and changes nothing (a merge commit is tried with
/// `git merge-tree`, which writes no ref and touches no working tree), so a caller can refuse before it
/// approves.
public struct BranchMerger {
  public let taskID: String
  /// The task's repository (its main working tree, as the record stores it).
  public let repositoryPath: String
  public let branch: String
  public let base: String
  /// The approve is already recorded: a refusal then names only the merge to run by hand, not the
  /// approve that would follow it.
  public var isApproved = false

  public init(taskID: String, repositoryPath: String, branch: String, base: String) {
    self.taskID = taskID
    self.repositoryPath = repositoryPath
    self.branch = branch
    self.base = base
  }

  public enum Outcome: Equatable, Sendable {
    case alreadyMerged
    /// `commits` new commits, `range` as `old..new` abbreviated ids.
    case fastForwarded(commits: Int, range: String)
    case merged(commits: Int, range: String)

    /// For the output: `merged 2 commit(s) of 'task/T-1' into 'main' (fast-forward, 1a2b3c4..5d6e7f8)`.
    public func summary(branch: String, base: String) -> String {
      switch self {
      case .alreadyMerged: "'\(branch)' was already merged into '\(base)' (nothing new to merge)"
      case .fastForwarded(let commits, let range):
        "merged \(commits) commit(s) of '\(branch)' into '\(base)' (fast-forward, \(range))"
      case .merged(let commits, let range):
        "merged \(commits) commit(s) of '\(branch)' into '\(base)' (merge commit, \(range))"
      }
    }

    /// For the approval's commit subject: `T-1: review → done (merged into main, fast-forward)`.
    public func detail(base: String) -> String {
      switch self {
      case .alreadyMerged: "already in \(base)"
      case .fastForwarded: "merged into \(base), fast-forward"
      case .merged: "merged into \(base), merge commit"
      }
    }
  }

  /// What ``merge()`` will do, found by ``plan()``.
  public enum Plan: Equatable, Sendable {
    case alreadyMerged
    /// Move the base ref, which no working tree has checked out.
    case moveReference(from: ObjectID, to: ObjectID)
    /// `git merge --ff-only` (`isFastForward`) or `git merge --no-edit` in `checkout`, its clean working
    /// tree that has the base checked out.
    case mergeInWorkingTree(checkout: String, isFastForward: Bool)
  }

  /// A working tree and the branch it has checked out.
  public struct Checkout {
    public var path: String
    public var branch: String?
    public var isMain: Bool
  }

  /// What must be run by hand after a refusal: the merge, then the approve unless it is recorded already.
  private var thenApprove: String { isApproved ? "" : ", then 'git taskq approve --id \(taskID)'" }

  /// Every check of ``merge()``, changing nothing.
  ///
  /// - Throws: ``MergeRefusal`` naming what is in the way and the commands to run by hand.
  public func plan() throws -> Plan {
    let repository: Repository
    do {
      repository = try Repository.open(at: repositoryPath)
    } catch {
      throw MergeRefusal("repository '\(repositoryPath)' of the task cannot be opened (was it moved?)")
    }
    guard let tip = try repository.referenceTarget("refs/heads/" + branch) else {
      throw MergeRefusal("branch '\(branch)' does not exist in '\(repositoryPath)' (nothing to merge)")
    }
    guard let baseTip = try repository.referenceTarget("refs/heads/" + base) else {
      throw MergeRefusal(
        "base branch '\(base)' does not exist in '\(repositoryPath)' (push or merge '\(branch)' by hand)")
    }
    if try repository.isAncestor(tip, of: baseTip) { return .alreadyMerged }
    let checkout = try Self.checkouts(of: repository).first { $0.branch == base }
    let isFastForward = try repository.isAncestor(baseTip, of: tip)
    if isFastForward, checkout == nil { return .moveReference(from: baseTip, to: tip) }

    let by = isFastForward ? "merge --ff-only" : "merge --no-edit"
    guard let checkout, checkout.isMain else {
      if let checkout {
        throw MergeRefusal(
          "'\(base)' is checked out in the linked worktree '\(checkout.path)', so git taskq does not merge into it; run: git -C \(shellQuote(checkout.path)) \(by) \(branch)\(thenApprove)"
        )
      }
      throw MergeRefusal(
        "'\(branch)' and '\(base)' have diverged, and a merge commit needs '\(base)' checked out in '\(repositoryPath)'; run: git -C \(shellQuote(repositoryPath)) switch \(base) && git -C \(shellQuote(repositoryPath)) merge \(branch)\(thenApprove)"
      )
    }
    let changes = try Repository.open(at: checkout.path).uncommittedChanges()
    if !changes.isEmpty {
      let shown = quotedList(changes, limit: 3)
      throw MergeRefusal(
        "'\(base)' is checked out in '\(checkout.path)' with uncommitted changes (\(shown)); commit or stash them, or merge by hand: git -C \(shellQuote(checkout.path)) \(by) \(branch)\(thenApprove)"
      )
    }
    if !isFastForward {
      // A trial merge that writes only objects: exit 1 lists the conflicts. An older git (before 2.38)
      // does not know `--write-tree` (exit 129): the real merge then finds them and aborts.
      let trial = try git(
        ["merge-tree", "--write-tree", "--name-only", "--no-messages", base, branch], in: checkout.path)
      if case .exited(1) = trial.ending {
        let conflicts = trial.stdoutText.split(separator: "\n").dropFirst().map(String.init)
        throw conflictRefusal(conflicts, in: checkout.path, aborted: false)
      }
    }
    return .mergeInWorkingTree(checkout: checkout.path, isFastForward: isFastForward)
  }

  /// Merges, or throws ``MergeRefusal`` having changed nothing.
  public func merge() throws -> Outcome {
    let plan = try plan()
    let repository = try Repository.open(at: repositoryPath)
    guard let tip = try repository.referenceTarget("refs/heads/" + branch),
      let baseTip = try repository.referenceTarget("refs/heads/" + base)
    else {
      if case .alreadyMerged = plan { return .alreadyMerged }
      throw MergeRefusal("'\(branch)' or '\(base)' went away while merging (nothing was changed)")
    }
    let counted = try? git(["rev-list", "--count", "\(baseTip)..\(tip)"], in: repositoryPath)
    let commits = counted.flatMap { Int($0.stdoutText.trimmingWhitespace()) } ?? 0
    func range(_ after: String?) -> String {
      "\(String(baseTip.description.prefix(7)))..\(String((after ?? tip.description).prefix(7)))"
    }

    switch plan {
    case .alreadyMerged:
      return .alreadyMerged
    case .moveReference(let from, let to):
      do {
        try repository.updateReference(
          "refs/heads/" + base, to: to, expected: from,
          message: "merge \(branch): Fast-forward (git taskq approve --merge)")
      } catch let error as GitError where [.modified, .exists, .locked].contains(error.code) {
        throw MergeRefusal("'\(base)' moved while merging (nothing was changed; run the command again)")
      }
      return .fastForwarded(commits: commits, range: range(to.description))
    case .mergeInWorkingTree(let checkout, let isFastForward):
      let result = try git(["merge", isFastForward ? "--ff-only" : "--no-edit", branch], in: checkout)
      if result.succeeded {
        let head = try? git(["rev-parse", "HEAD"], in: checkout)
        let after = head.map { $0.stdoutText.trimmingWhitespace() }
        return isFastForward
          ? .fastForwarded(commits: commits, range: range(after)) : .merged(commits: commits, range: range(after))
      }
      // Leave the working tree as it was: list the conflicts, then abort the merge git started.
      let conflicts =
        (try? git(["diff", "--name-only", "--diff-filter=U"], in: checkout))?.stdoutText
        .split(separator: "\n").map(String.init) ?? []
      var aborted = false
      if FileManager.default.fileExists(atPath: repository.commonDirectory + "MERGE_HEAD") {
        aborted = (try? git(["merge", "--abort"], in: checkout))?.succeeded ?? false
      }
      if !conflicts.isEmpty { throw conflictRefusal(conflicts, in: checkout, aborted: aborted) }
      let tail = (result.stderrText + result.stdoutText).split(separator: "\n").suffix(3).joined(separator: " / ")
      throw MergeRefusal(
        "'git -C \(shellQuote(checkout)) merge \(branch)' failed (\(result.endingDescription)): \(tail)\(aborted ? "; the merge was aborted" : "")"
      )
    }
  }

  private func conflictRefusal(_ conflicts: [String], in checkout: String, aborted: Bool) -> MergeRefusal {
    let shown = quotedList(conflicts, limit: 5)
    return MergeRefusal(
      "merging '\(branch)' into '\(base)' conflicts in \(shown)\(aborted ? "; the merge was aborted" : ""); resolve it by hand: git -C \(shellQuote(checkout)) merge \(branch)\(thenApprove)"
    )
  }

  /// Why a task in review cannot be approved without `--force`: its worktree (when it still exists) has
  /// uncommitted or untracked changes, named in the message; `nil` when it is clean or gone.
  public static func uncommittedWorkRefusal(_ record: TaskRecord) -> String? {
    guard let path = record.worktreePath, let changes = Cleaner.uncommittedChanges(at: path), !changes.isEmpty
    else { return nil }
    let shown = quotedList(changes, limit: 5)
    return
      "the worktree of task '\(record.id)' has uncommitted or untracked changes that are not on '\(record.branch)': \(shown); commit them (git -C \(shellQuote(path)) add -A && git -C \(shellQuote(path)) commit), or pass --force to approve without them"
  }

  /// The commands that merge or push the branch by hand, for the output of a plain `approve`.
  public func instructions() -> [String] {
    let repo = shellQuote(repositoryPath)
    let opened = try? Repository.open(at: repositoryPath)
    let checkedOut = opened.flatMap { try? Self.checkouts(of: $0).first?.branch } == base
    let merge =
      checkedOut
      ? "git -C \(repo) merge \(branch)"
      : "git -C \(repo) switch \(base) && git -C \(repo) merge \(branch)"
    // The remote to suggest for a push: `origin` when the repository has it.
    let origin = opened.flatMap { try? $0.configuration().string("remote.origin.url") } != nil
    return [
      "merge it:  \(merge)",
      "push it:   git -C \(repo) push -u \(origin ? "origin" : "<remote>") \(branch)",
    ]
  }

  /// Every working tree of `repository` and its checked-out branch (`nil`: detached), the main one first.
  ///
  /// Read from the `HEAD` files git keeps for each (libgit2 1.5 has no call that names a worktree's branch).
  static func checkouts(of repository: Repository) throws -> [Checkout] {
    var result: [Checkout] = []
    let common = repository.commonDirectory
    if !repository.isBare {
      result.append(Checkout(path: repository.mainWorkingDirectory, branch: headBranch(common + "HEAD"), isMain: true))
    }
    for name in try repository.worktreeNames() {
      guard let path = try repository.worktreePath(named: name), FileManager.default.fileExists(atPath: path) else {
        continue
      }
      var trimmed = path
      while trimmed.hasSuffix("/") && trimmed.count > 1 { trimmed.removeLast() }
      result.append(Checkout(path: trimmed, branch: headBranch(common + "worktrees/\(name)/HEAD"), isMain: false))
    }
    return result
  }

  /// The branch a `HEAD` file points at (`ref: refs/heads/<branch>`), `nil` when detached or unreadable.
  static func headBranch(_ path: String) -> String? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    let line = text.trimmingWhitespace()
    let prefix = "ref: refs/heads/"
    return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : nil
  }

  /// Runs the git CLI in `directory`, without the variables that would point it at another repository
  /// (git's own "local repository environment").
  private func git(_ arguments: [String], in directory: String) throws -> ProcessResult {
    let locating = [
      "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
      "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_GRAFT_FILE", "GIT_REPLACE_REF_BASE",
    ]
    let environment = ProcessInfo.processInfo.environment.filter { !locating.contains($0.key) }
    return try ProcessRunner.run(
      ProcessSpec(
        "git", ["-C", directory] + arguments, environment: environment, inheritEnvironment: false, timeout: 300))
  }
}

/// Why `approve --merge` did not merge, in one line with what to run instead.
public struct MergeRefusal: Error, CustomStringConvertible, LocalizedError {
  public var description: String
  public init(_ description: String) { self.description = description }
  public var errorDescription: String? { description }
}
