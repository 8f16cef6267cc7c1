import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift's Glibc module does not export.
@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func spawnAddChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>)
  -> Int32

/// A program to run: an argv array (never a shell string), its environment, directory, input and timeout.
public struct ProcessSpec: Sendable {
  /// The program: a name looked up on `PATH`, or a path.
  public var program: String
  public var arguments: [String]
  /// Variables to set on top of (or, with `inheritEnvironment == false`, instead of) this process's.
  public var environment: [String: String]
  public var inheritEnvironment: Bool
  public var directory: String?
  public var input: [UInt8]?
  /// Seconds before the process group is killed.
  public var timeout: Double
  /// Bytes of stdout and of stderr to keep (the tail is kept when output is longer).
  public var outputLimit: Int

  public init(
    _ program: String, _ arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true,
    directory: String? = nil, input: [UInt8]? = nil, timeout: Double, outputLimit: Int = 1 << 20
  ) {
    self.program = program
    self.arguments = arguments
    self.environment = environment
    self.inheritEnvironment = inheritEnvironment
    self.directory = directory
    self.input = input
    self.timeout = timeout
    self.outputLimit = outputLimit
  }

  /// The command line as a person would type it, for error reports (never executed).
  public var commandLine: String {
    ([program] + arguments).map(shellQuote).joined(separator: " ")
  }
}

/// How a process ended.
public struct ProcessResult: Sendable {
  public enum Ending: Sendable, Equatable {
    case exited(Int32)
    case signalled(Int32)
    case timedOut
    case stopped
  }
  public var ending: Ending
  public var stdout: [UInt8]
  public var stderr: [UInt8]
  public var duration: Double

  public var succeeded: Bool { ending == .exited(0) }
  public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
  public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

  /// `exit status 2`, `killed by signal 9`, `timed out`, `stopped`.
  public var endingDescription: String {
    switch ending {
    case .exited(let code): "exit status \(code)"
    case .signalled(let signal): "killed by signal \(signal)"
    case .timedOut: "timed out"
    case .stopped: "stopped (cancelled or interrupted)"
    }
  }
}

/// The error when a program cannot be started at all.
public struct SpawnError: Error, CustomStringConvertible {
  public var program: String
  public var reason: String
  public var description: String { "cannot run '\(program)': \(reason)" }
}

/// Runs programs with `posix_spawn` in their own process group, capturing output, with a timeout.
///
/// `Foundation.Process.waitUntilExit()` costs ~50 ms per call on Linux; this costs 1–2 ms. On timeout, or
/// when `shouldStop` returns true, the whole process group gets SIGTERM, then SIGKILL after `grace` seconds.
/// Thread-safe: workers call it concurrently (every pipe is close-on-exec, so no child inherits another's).
public enum ProcessRunner {
  public static func run(
    _ spec: ProcessSpec, grace: Double = 2, shouldStop: (() -> Bool)? = nil
  ) throws -> ProcessResult {
    guard let executable = resolve(spec.program, environment: spec.environment) else {
      throw SpawnError(program: spec.program, reason: "not found on PATH (install it or configure its path)")
    }
    let start = monotonic()
    var outPipe: [Int32] = [0, 0]
    var errPipe: [Int32] = [0, 0]
    var inPipe: [Int32] = [0, 0]
    // Pipes are made close-on-exec and the child spawned under one lock, so that a child spawned at the same
    // moment by another thread never inherits (and holds open) this child's pipes.
    spawnLock.lock()
    var locked = true
    defer { if locked { spawnLock.unlock() } }
    guard makePipe(&outPipe), makePipe(&errPipe), makePipe(&inPipe) else {
      throw SpawnError(program: spec.program, reason: "pipe: \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    if let directory = spec.directory {
      _ = spawnAddChdir(&actions, directory)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setpgroup(&attributes, 0)
    var defaultSignals = sigset_t()
    sigemptyset(&defaultSignals)
    sigaddset(&defaultSignals, SIGPIPE)
    sigaddset(&defaultSignals, SIGINT)
    sigaddset(&defaultSignals, SIGTERM)
    posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    posix_spawnattr_setflags(
      &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    var env = spec.inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
    for (key, value) in spec.environment { env[key] = value }
    let argv = ([executable] + spec.arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv { free(pointer) }
      for pointer in envp { free(pointer) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    spawnLock.unlock()
    locked = false
    close(inPipe[0])
    close(outPipe[1])
    close(errPipe[1])
    guard rc == 0 else {
      close(inPipe[1])
      close(outPipe[0])
      close(errPipe[0])
      throw SpawnError(program: spec.program, reason: String(cString: strerror(rc)))
    }
    // Input: small inputs (task bodies are ≤ 1 MiB) are written from a helper thread so a child that does
    // not read cannot block us.
    let inputFD = inPipe[1]
    if let input = spec.input, !input.isEmpty {
      let writer = try PosixThread {
        input.withUnsafeBytes { buffer in
          guard let base = buffer.baseAddress else { return }
          var offset = 0
          while offset < buffer.count {
            let n = write(inputFD, base + offset, buffer.count - offset)
            if n <= 0 { break }
            offset += n
          }
        }
        close(inputFD)
      }
      writer.detach()
    } else {
      close(inputFD)
    }

    var stdout = OutputBuffer(limit: spec.outputLimit)
    var stderr = OutputBuffer(limit: spec.outputLimit)
    var fds = [
      pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0),
      pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0),
    ]
    var open = 2
    var status: Int32 = 0
    var exited = false
    var ending: ProcessResult.Ending?
    var killDeadline: Double?
    var exitedAt: Double?
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      if open > 0 {
        let ready = poll(&fds, nfds_t(fds.count), 50)
        if ready > 0 {
          for i in 0..<fds.count where fds[i].fd >= 0 && fds[i].revents != 0 {
            let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
            if n > 0 {
              if i == 0 { stdout.append(buffer[0..<n]) } else { stderr.append(buffer[0..<n]) }
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
              close(fds[i].fd)
              fds[i].fd = -1
              open -= 1
            }
          }
        }
      } else if !exited {
        usleep(2000)
      }
      if !exited {
        let w = waitpid(pid, &status, WNOHANG)
        if w == pid {
          exited = true
          exitedAt = monotonic()
        }
      }
      // Output pipes closed and the child gone: done. A grandchild keeping the pipes open gets 0.2 s.
      if exited && (open == 0 || monotonic() - (exitedAt ?? 0) > 0.2) { break }
      let now = monotonic()
      if !exited && ending == nil {
        if now - start > spec.timeout {
          ending = .timedOut
        } else if let shouldStop, shouldStop() {
          ending = .stopped
        }
        if ending != nil {
          kill(-pid, SIGTERM)
          killDeadline = now + grace
        }
      }
      if let deadline = killDeadline, !exited, now > deadline {
        kill(-pid, SIGKILL)
        killDeadline = nil
      }
    }
    for fd in fds where fd.fd >= 0 { close(fd.fd) }
    if ending != nil {
      // Anything left of the group goes too.
      kill(-pid, SIGKILL)
    }
    let final: ProcessResult.Ending
    if let ending {
      final = ending
    } else if (status & 0x7f) == 0 {
      final = .exited((status >> 8) & 0xff)
    } else {
      final = .signalled(status & 0x7f)
    }
    return ProcessResult(ending: final, stdout: stdout.bytes, stderr: stderr.bytes, duration: monotonic() - start)
  }

  /// The absolute path of `program` on `PATH` (the spec's `PATH` wins), or `nil`.
  public static func resolve(_ program: String, environment: [String: String] = [:]) -> String? {
    if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
    let path = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
      let candidate = "\(directory)/\(program)"
      var info = stat()
      if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
        return candidate
      }
    }
    return nil
  }

  private static let spawnLock = Lock()

  private static func makePipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
    return true
  }

  static func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }
}

/// Keeps at most `limit` bytes: the head until full, then the most recent tail.
struct OutputBuffer {
  let limit: Int
  private(set) var bytes: [UInt8] = []
  init(limit: Int) { self.limit = limit }
  mutating func append(_ chunk: ArraySlice<UInt8>) {
    bytes.append(contentsOf: chunk)
    if bytes.count > limit * 2 { bytes.removeFirst(bytes.count - limit) }
  }
}
