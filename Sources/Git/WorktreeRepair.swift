#if canImport(Glibc)
import Glibc
#endif

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
    for name in (try? FileManager.default.contentsOfDirectory(atPath: worktreesDirectory)) ?? []
    where hasMissingFiles(name) || unfinishedCheckout(name) != nil {
      names.insert(name)
    }
    return names.sorted()
  }

  /// Whether the registration of worktree `name` is half-made (see ``halfMadeWorktreeNames()``), looking at
  /// that one only: for a worker about to add it, in a repository that may hold hundreds.
  public func isHalfMadeWorktree(named name: String) -> Bool {
    if hasMissingFiles(name) || unfinishedCheckout(name) != nil { return true }
    guard isRegisteredWorktree(name) else { return false }
    return !isReadableWorktreeHead(name)
  }

  /// The checkout path that ``addWorktree(named:at:branch:)`` was making for `name` when it was stopped
  /// (its marker is still in the registration), or `nil`.
  private func unfinishedCheckout(_ name: String) -> String? {
    guard !name.hasPrefix("."), !name.isEmpty, !name.contains("/") else { return nil }
    let marker = worktreesDirectory + name + "/" + Self.addingMarker
    guard let data = FileManager.default.contents(atPath: marker) else { return nil }
    var path = String(decoding: data, as: UTF8.self)
    while path.last == "\n" { path.removeLast() }
    return path.isEmpty ? "" : path
  }

  /// Removes `path` when it is what an unfinished add of worktree `name` left: a directory whose `.git` is a
  /// file naming this repository's registration `name` (the checkout half made, no work in it: nothing ran
  /// there), or, when `orEmpty` (the add's own marker named it), an empty directory. Anything else there is
  /// someone's and stays.
  public func removeLeftoverCheckout(at path: String, named name: String, orEmpty: Bool = false) {
    guard !name.isEmpty, !name.contains("/"),
      let entries = try? FileManager.default.contentsOfDirectory(atPath: path)
    else { return }
    if entries.isEmpty {
      if orEmpty { rmdir(path) }
      return
    }
    var info = stat()
    guard lstat(path + "/.git", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
      let data = FileManager.default.contents(atPath: path + "/.git"), data.count < 4096
    else { return }
    var text = String(decoding: data, as: UTF8.self)
    while let last = text.last, last.isWhitespace { text.removeLast() }
    guard text.hasPrefix("gitdir: ") else { return }
    var named = String(text.dropFirst("gitdir: ".count))
    while named.count > 1 && named.hasSuffix("/") { named.removeLast() }
    let admin = worktreesDirectory + name
    let resolved = (try? Self.resolvedDirectory(commonDirectory)).map { $0 + "worktrees/" + name }
    guard named == admin || named == resolved else { return }
    removeTree(path)
  }

  /// Whether `<common dir>/worktrees/<name>` is a directory in which `commondir`, `gitdir` or `HEAD` is
  /// missing or empty.
  private func hasMissingFiles(_ name: String) -> Bool {
    guard !name.hasPrefix("."), !name.isEmpty, !name.contains("/") else { return false }
    let path = worktreesDirectory + name
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
    // An add stopped before its end names its unfinished checkout: that goes too when it is only that.
    let unfinished = unfinishedCheckout(name)
    defer {
      if let unfinished, !unfinished.isEmpty { removeLeftoverCheckout(at: unfinished, named: name, orEmpty: true) }
    }
    if isRegisteredWorktree(name), (try? removeWorktree(named: name)) != nil { return }
    let path = worktreesDirectory + name
    if FileManager.default.fileExists(atPath: path) { removeTree(path) }
  }
}
