import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// git's pager for long output on a terminal (`status`, `show`, `log`), chosen as git chooses it.
///
/// The pager is `GIT_PAGER`, else `pager.taskq` (a command; `false` turns paging off), else `core.pager`,
/// else `PAGER`, else `less`; an empty value or `cat` means none. `LESS=FRX` and `LV=-c` are set when
/// unset, as git sets them, so a short output prints and returns at once. There is no pager when standard
/// output is not a terminal (pipes, files), for JSON and `--watch`, when git already runs one
/// (`git -p taskq …` or `pager.taskq=true` set `GIT_PAGER_IN_USE`), and under `git --no-pager taskq …`
/// (`-P`), which git does not pass on: it is read from the command line of the parent git process.
enum Pager {
  /// Prints `text` (plus a newline) through the pager when one applies, else on standard output.
  static func print(_ text: String, configuration: (any GitConfigReading)?) {
    guard let command = command(configuration: configuration) else {
      Swift.print(text)
      return
    }
    if !run(command, input: text + "\n") { Swift.print(text) }
  }

  /// The pager command to run for this process, or `nil` when output goes straight to standard output.
  static func command(
    configuration: (any GitConfigReading)?, environment: [String: String] = ProcessInfo.processInfo.environment,
    isTerminal: Bool = Output.isTerminal(1), parentArguments: [String]? = Pager.parentArguments()
  ) -> String? {
    guard isTerminal, environment["GIT_PAGER_IN_USE"] == nil else { return nil }
    if let parent = parentArguments, Self.gitSaysNoPager(parent) { return nil }
    var chosen: String?
    if let pager = environment["GIT_PAGER"] {
      chosen = pager
      // Paging is a convenience: an unreadable value (the configuration was already read once, so this is
      // next to impossible) pages as if it were unset, as git does for a pager it cannot resolve.
    } else if let value = (try? configuration?.string("pager.taskq")) ?? nil {
      switch ColorChoice.parseBool(value) {
      case false?: return nil
      case true?: chosen = nil
      case nil: chosen = value
      }
    }
    // As for pager.taskq above.
    if chosen == nil, let value = (try? configuration?.string("core.pager")) ?? nil { chosen = value }
    if chosen == nil { chosen = environment["PAGER"] }
    let pager = (chosen ?? "less").trimmingSpaces()
    return pager.isEmpty || pager == "cat" ? nil : pager
  }

  /// Whether the words of a parent `git` process turn the pager off: `--no-pager` or `-P` among git's
  /// own options, before the command.
  static func gitSaysNoPager(_ words: [String]) -> Bool {
    guard let first = words.first, PathName.lastComponent(first) == "git" else { return false }
    for word in words.dropFirst() {
      if word == "--no-pager" || word == "-P" { return true }
      if !word.hasPrefix("-") { return false }
    }
    return false
  }

  /// The command line of the parent process (git, when run as `git taskq`), on Linux.
  static func parentArguments() -> [String]? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(getppid())/cmdline") else { return nil }
    return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Runs `command` with `/bin/sh -c`, writes `input` to it and waits until the user leaves it.
  /// Returns `false` when it could not be started.
  static func run(_ command: String, input: String) -> Bool {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return false }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    posix_spawn_file_actions_addclose(&actions, fds[1])
    var environment = ProcessInfo.processInfo.environment
    if environment["LESS"] == nil { environment["LESS"] = "FRX" }
    if environment["LV"] == nil { environment["LV"] = "-c" }
    environment["GIT_PAGER_IN_USE"] = "true"
    let words: [String] = ["/bin/sh", "-c", command]
    let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv { free(pointer) }
      for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
    close(fds[0])
    guard spawned == 0 else {
      close(fds[1])
      return false
    }
    // The user may quit the pager before reading everything: a write then fails, it must not kill us.
    signal(SIGPIPE, SIG_IGN)
    // Ctrl-C goes to the pager (less handles it); we wait for it to end.
    signal(SIGINT, SIG_IGN)
    Output.write(input, to: fds[1])
    close(fds[1])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return true
  }
}
