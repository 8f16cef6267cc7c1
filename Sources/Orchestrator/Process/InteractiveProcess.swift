#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A program the user works in (an editor): it shares this process's terminal and process group, and
/// runs for as long as the user wants, so unlike ``ProcessRunner`` it gets no pipes and no timeout.
public enum InteractiveProcess {
  /// Starts `executable` with `argv` (its `argv[0]` first) and this process's environment, and waits.
  ///
  /// `posix_spawn` and `waitpid`, not Foundation's `Process`: waiting must not depend on a run loop in an
  /// async context. Ctrl-C and Ctrl-\ are left to the program while it runs, as git does for its editor.
  ///
  /// - Throws: ``SpawnError`` when it cannot be started.
  public static func run(_ executable: String, _ argv: [String]) throws -> ProcessResult.Ending {
    let words: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
    defer { for word in words { free(word) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, nil, nil, words + [nil], environ)
    guard rc == 0 else { throw SpawnError(program: executable, reason: String(cString: strerror(rc))) }
    let oldInterrupt = signal(SIGINT, SIG_IGN)
    let oldQuit = signal(SIGQUIT, SIG_IGN)
    defer {
      signal(SIGINT, oldInterrupt)
      signal(SIGQUIT, oldQuit)
    }
    var status: Int32 = 0
    var waited: pid_t
    repeat { waited = waitpid(pid, &status, 0) } while waited < 0 && errno == EINTR
    guard waited == pid else { return .stopped }
    let exited = status & 0x7f == 0
    return exited ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
  }
}
