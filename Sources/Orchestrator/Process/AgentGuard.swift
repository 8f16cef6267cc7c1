import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Keeps an agent from outliving the worker that started it.
///
/// Every agent (and every `docker exec` client) runs under a small guard: `git-taskq __guard [--stop-container
/// PROGRAM NAME] -- PROGRAM ARGS…`. The guard starts the program in its own process group (which
/// ``ProcessRunner`` made a group of its own), waits for it, and exits as it did. Every 50 ms it also checks
/// its parent: once the worker is gone (killed with `kill -9`, crashed), the guard stops the whole group
/// (SIGTERM, SIGKILL 2 s later) and, for a container task, stops the container, since killing a `docker exec`
/// client does not stop what it started inside (moby/moby#9098). `PR_SET_PDEATHSIG` alone would not do: it
/// follows the thread that spawned the child, reaches only that child (not its children), and cannot be set
/// between fork and exec with `posix_spawn`.
public enum AgentGuard {
  /// The argument that selects the guard in `git-taskq`'s entry point.
  public static let command = "__guard"

  /// The executable that can act as the guard: this process's own binary when it is `git-taskq` (in-process
  /// tests run without a guard).
  static let executable: String? = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    let path = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return PathName.lastComponent(path) == "git-taskq" ? path : nil
  }()

  /// `spec` run under the guard, or `spec` itself when no guard is available or its program is not found
  /// (the runner then reports that).
  ///
  /// With `stopContainer`, an orphaned guard also stops that container; with `removeContainer` too, it
  /// removes it (for `docker run`, whose container is of no use once its worker is gone).
  public static func wrap(
    _ spec: ProcessSpec, stopContainer: (program: String, name: String)? = nil, removeContainer: Bool = false
  ) -> ProcessSpec {
    guard let executable, let program = ProcessRunner.resolve(spec.program, environment: spec.environment) else {
      return spec
    }
    var wrapped = spec
    wrapped.program = executable
    var arguments = [command]
    if let stopContainer {
      let engine = ProcessRunner.resolve(stopContainer.program, environment: spec.environment) ?? stopContainer.program
      arguments += [removeContainer ? "--remove-container" : "--stop-container", engine, stopContainer.name]
    }
    wrapped.arguments = arguments + ["--", program] + spec.arguments
    return wrapped
  }

  /// The guard's main: runs `arguments` (everything after `__guard`) and returns the exit status to exit with.
  public static func main(_ arguments: [String]) -> Int32 {
    var rest = arguments[...]
    var container: (program: String, name: String)?
    var removes = false
    if rest.first == "--stop-container" || rest.first == "--remove-container", rest.count >= 3 {
      removes = rest.first == "--remove-container"
      container = (rest[rest.startIndex + 1], rest[rest.startIndex + 2])
      rest = rest.dropFirst(3)
    }
    if rest.first == "--" { rest = rest.dropFirst() }
    guard let program = rest.first else {
      Output.write("git-taskq __guard: no program given\n", to: 2)
      return 2
    }
    let parent = getppid()
    // The stops below go to the group, which includes the guard: it waits for the agent instead.
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    signal(SIGHUP, SIG_IGN)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
    let argv = Array(rest).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var child: pid_t = 0
    let rc = posix_spawn(&child, program, nil, &attributes, argv, environ)
    guard rc == 0 else {
      Output.write("git-taskq __guard: cannot run '\(program)': \(String(cString: strerror(rc)))\n", to: 2)
      return 127
    }
    // The worker may have died before the spawn.
    var orphaned = getppid() != parent
    var status: Int32 = 0
    // 1 ms, doubling to 50 ms: a program that ends at once (a no-op agent) does not cost a whole 50 ms.
    var pause: UInt32 = 1000
    while !orphaned {
      let w = waitpid(child, &status, WNOHANG)
      if w == child { return exit(status: status) }
      if w < 0 && errno != EINTR { return 1 }
      usleep(pause)
      pause = min(pause * 2, 50_000)
      orphaned = getppid() != parent
    }
    // Orphaned: the worker is gone, so is the reason to run.
    kill(0, SIGTERM)
    if let container {
      let arguments = removes ? ["rm", "-f", container.name] : ["stop", "-t", "2", container.name]
      _ = try? ProcessRunner.run(ProcessSpec(container.program, arguments, timeout: 30))
    }
    let deadline = ProcessRunner.monotonic() + 2
    while ProcessRunner.monotonic() < deadline {
      if waitpid(child, &status, WNOHANG) == child { break }
      usleep(50_000)
    }
    kill(0, SIGKILL)
    return 137
  }

  /// Exits as the child did: with its status, or by the same signal.
  static func exit(status: Int32) -> Int32 {
    if (status & 0x7f) == 0 { return (status >> 8) & 0xff }
    let signalNumber = status & 0x7f
    signal(signalNumber, SIG_DFL)
    kill(getpid(), signalNumber)
    return 128 + signalNumber
  }
}
