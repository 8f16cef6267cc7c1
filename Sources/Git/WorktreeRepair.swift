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
    for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
      guard !name.hasPrefix("."), !name.contains("/") else { continue }
      guard
        (try? FileManager.default.attributesOfItem(atPath: root + name))?[.type] as? FileAttributeType == .typeDirectory
      else { continue }
      for file in ["commondir", "gitdir", "HEAD"] {
        let data = FileManager.default.contents(atPath: root + name + "/" + file)
        if data?.isEmpty ?? true {
          names.insert(name)
          break
        }
      }
    }
    return names.sorted()
  }

  /// Removes the half-made registration `name` (see ``halfMadeWorktreeNames()``): through libgit2 when it
  /// can still read it, else by deleting `<common dir>/worktrees/<name>`, which holds no work. The checkout
  /// directory is not touched.
  public func removeHalfMadeWorktree(named name: String) throws {
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return }
    if (try? worktreeNames().contains(name)) == true, (try? removeWorktree(named: name)) != nil { return }
    let path = commonDirectory + "worktrees/" + name
    if FileManager.default.fileExists(atPath: path) { removeTree(path) }
  }
}
