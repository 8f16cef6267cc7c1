import TaskQueue

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

/// The user's editor, found and started as git does it (`edit`, and `add` without a task).
public enum Editor {
  /// git's order: `GIT_EDITOR`, `core.editor`, `VISUAL` (unless the terminal is dumb), `EDITOR`, then `vi`
  /// (unless the terminal is dumb).
  ///
  /// - Throws: ``QueueError`` on a dumb terminal with no editor set; the configuration's error.
  public static func resolve(
    settings: Settings, environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> String {
    let dumb = (environment["TERM"] ?? "dumb") == "dumb"
    let candidates: [String?] = [
      environment["GIT_EDITOR"],
      try settings.gitValue("core.editor"),
      dumb ? nil : environment["VISUAL"],
      environment["EDITOR"],
    ]
    if let editor = candidates.compactMap({ $0 }).first(where: { !$0.allSatisfy { $0 == " " || $0 == "\t" } }) {
      return editor
    }
    if dumb {
      throw QueueError.missingOption(
        "the terminal is dumb, but no editor is set (set GIT_EDITOR, core.editor, VISUAL or EDITOR)")
    }
    return "vi"
  }

  /// Runs `editor` on `path` with this process's terminal, and waits for it.
  ///
  /// Editors are configured as shell text (`code --wait`, `'/opt/My Editor/bin/edit' -f`), so the editor
  /// runs as `sh -c '<editor> "$@"' <editor> <path>`: the shell reads the editor's words, and the path
  /// reaches it only as `$1`, never as text the shell parses. `:` (git's "no editor") does nothing.
  ///
  /// - Parameters:
  ///   - editor: the editor's shell text.
  ///   - path: the file to edit.
  ///   - keptDraft: where the user's text stays when the editor fails, for the error.
  /// - Throws: ``QueueError`` when the editor cannot start, fails, or is killed.
  public static func launch(_ editor: String, on path: String, keptDraft: String? = nil) throws {
    if editor == ":" { return }
    let ending: ProcessResult.Ending
    do {
      ending = try InteractiveProcess.run("/bin/sh", ["sh", "-c", editor + " \"$@\"", editor, path])
    } catch let error as SpawnError {
      throw QueueError.editor(editor, failure: .cannotStart(reason: error.reason))
    }
    guard ending == .exited(0) else {
      let how =
        switch ending {
        case .exited(let code): "exited with status \(code)"
        case .signalled(let signal): "was killed by signal \(signal)"
        case .timedOut, .stopped: "stopped"
        }
      throw QueueError.editor(editor, failure: .failed(ending: how, keptDraft: keptDraft))
    }
  }
}
