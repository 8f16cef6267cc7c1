#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Repository {
  /// Worktree registrations that are half-made: the ones ``brokenWorktreeNames()`` finds, and directories
  /// under `<common dir>/worktrees/` that libgit2 does not even list because a file it needs (`commondir`,
  /// `gitdir`, `HEAD`) is missing or empty, as `git_worktree_add` leaves them when the disk fills up.
  public func halfMadeWorktreeNames() throws -> [String] {
    var names = Set(try brokenWorktreeNames())
    let root = commonDirectory + "worktrees/"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where hasMissingFiles(name) {
      names.insert(name)
    }
    return names.sorted()
  }

  /// Whether the registration of worktree `name` is half-made (see ``halfMadeWorktreeNames()``), looking at
  /// that one only: for a worker about to add it, in a repository that may hold hundreds.
  public func isHalfMadeWorktree(named name: String) -> Bool {
    if hasMissingFiles(name) { return true }
    guard isRegisteredWorktree(name) else { return false }
    return !isReadableWorktreeHead(name)
  }

  /// Whether `<common dir>/worktrees/<name>` is a directory in which `commondir`, `gitdir` or `HEAD` is
  /// missing or empty.
  private func hasMissingFiles(_ name: String) -> Bool {
    guard !name.hasPrefix("."), !name.isEmpty, !name.contains("/") else { return false }
    let path = commonDirectory + "worktrees/" + name
    guard (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType == .typeDirectory
    else { return false }
    return ["commondir", "gitdir", "HEAD"].contains { file in
      FileManager.default.contents(atPath: path + "/" + file)?.isEmpty ?? true
    }
  }

  /// Removes the half-made registration `name` (see ``halfMadeWorktreeNames()``): through libgit2 when it
  /// can still read it, else by deleting `<common dir>/worktrees/<name>`, which holds no work. The checkout
  /// directory is not touched.
  public func removeHalfMadeWorktree(named name: String) throws {
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return }
    if isRegisteredWorktree(name), (try? removeWorktree(named: name)) != nil { return }
    let path = commonDirectory + "worktrees/" + name
    if FileManager.default.fileExists(atPath: path) { removeTree(path) }
  }
}
