#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file the user edits, kept under the git directory (`.git/taskq/edit/<name>.md`, as git keeps
/// `COMMIT_EDITMSG`) until what it says is recorded, so a refused edit is not lost.
public struct TaskDraft {
  public let path: String
  /// The text the draft started from, to tell whether a kept draft still applies.
  private let basePath: String
  private let directory: String

  /// - Parameters:
  ///   - gitDirectory: this worktree's git directory, with its trailing `/` (as ``Repository`` gives it).
  ///   - name: the draft's name: a task id, or `new-task`.
  public init(gitDirectory: String, name: String) {
    directory = gitDirectory + "taskq/edit"
    path = directory + "/" + name + ".md"
    basePath = directory + "/." + name + ".base"
  }

  /// Writes a new draft.
  public func start(text: String, basedOn base: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    try Data(base.utf8).write(to: URL(fileURLWithPath: basePath), options: .atomic)
  }

  /// Whether a kept draft exists that started from `base`, so that it is opened again.
  ///
  /// A draft whose task changed since it was made is stale: it is replaced.
  public func resume(basedOn base: String) -> Bool {
    guard FileManager.default.fileExists(atPath: path),
      let kept = FileManager.default.contents(atPath: basePath), kept == Data(base.utf8)
    else { return false }
    return true
  }

  /// Opens the draft (starting it from `text` unless a kept one applies).
  ///
  /// - Returns: whether a kept draft is being resumed.
  public func open(text: String) throws -> Bool {
    if resume(basedOn: text) { return true }
    try start(text: text, basedOn: text)
    return false
  }

  public func read() throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw QueueError.taskFile(path: path, problem: "no such file (did the editor delete it?)")
    }
    return String(decoding: data, as: UTF8.self)
  }

  /// Deletes the draft once what it says is recorded. A draft that cannot be deleted only stays behind
  /// and is replaced by the next edit (its base no longer matches), so the result is not checked.
  public func discard() {
    unlink(path)
    unlink(basePath)
  }
}
