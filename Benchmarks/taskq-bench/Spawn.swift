#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift's Glibc module does not export.
@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func spawnAddChdir(
  _ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>
) -> Int32

/// glibc's `pipe2`, which Swift's Glibc module does not export (it needs `_GNU_SOURCE`).
@_silgen_name("pipe2")
private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// Runs a program with `posix_spawn` and waits for it: the timing primitive of the harness.
///
/// stdout goes to `/dev/null` (as with `hyperfine`); nothing is buffered in this process, so the time
/// measured is the child's own. Foundation's `Process.waitUntilExit()` would add
/// ~50 ms per call on Linux.
enum Spawn {
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  /// The environment children get: ours, without system git config (as the test suite runs).
  nonisolated(unsafe) static var environment: [String] = {
    var result: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
      result.append(String(cString: entry))
      pointer += 1
    }
    result.append("GIT_CONFIG_NOSYSTEM=1")
    return result
  }()

  /// Runs `program arguments` in `directory`; returns the wall time (spawn to reaped) and the child's CPU
  /// time (user + system, from `wait4`).
  ///
  /// - Throws: ``Failure`` when it cannot start or does not exit 0.
  ///
  /// stderr goes to a pipe (read after the child exits, for the failure message), not to a file: creating
  /// and deleting a file per run would itself slow the file system down (see docs/performance.md).
  @discardableResult
  static func run(
    _ program: String, _ arguments: [String], in directory: String, extraEnvironment: [String] = [],
    input: [UInt8]? = nil
  ) throws -> Timing {
    var errorPipe: [Int32] = [-1, -1]
    var inputPipe: [Int32] = [-1, -1]
    guard pipe2(&errorPipe, O_CLOEXEC) == 0 else { throw Failure(description: "pipe failed") }
    defer { close(errorPipe[0]) }
    if input != nil {
      guard pipe2(&inputPipe, O_CLOEXEC) == 0 else { throw Failure(description: "pipe failed") }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if input != nil {
      posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0)
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
    _ = spawnAddChdir(&actions, directory)
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    let envp = (environment + extraEnvironment).map { strdup($0) } + [nil]
    defer {
      for pointer in argv + envp { free(pointer) }
    }
    var pid: pid_t = 0
    let start = Clock.now()
    let rc = posix_spawn(&pid, program, &actions, nil, argv, envp)
    close(errorPipe[1])
    if let input {
      close(inputPipe[0])
      input.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
          let n = write(inputPipe[1], buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
          if n < 0 && errno == EINTR { continue }
          guard n > 0 else { break }
          offset += n
        }
      }
      close(inputPipe[1])
    }
    guard rc == 0 else {
      throw Failure(description: "cannot run \(program): \(String(cString: strerror(rc)))")
    }
    // The child's stderr is read until it closes it (at exit); a chatty child cannot block on a full pipe.
    var errors: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = read(errorPipe[0], &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      errors.append(contentsOf: chunk[0..<n])
      if errors.count > 1 << 16 { errors.removeFirst(errors.count - (1 << 16)) }
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let elapsed = Clock.now() - start
    let cpu =
      Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
      + Double(usage.ru_stime.tv_usec) / 1e6
    // WIFEXITED && WEXITSTATUS == 0
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
      let tail = String(decoding: errors.suffix(2000), as: UTF8.self)
      throw Failure(
        description: "\(([program] + arguments).joined(separator: " ")) failed (status \(status)): \(tail)")
    }
    return Timing(wall: elapsed, cpu: cpu, maxRSS: Int(usage.ru_maxrss) * 1024)
  }

  /// The peak resident memory (bytes) of `program arguments` run in `directory`, measured so that this
  /// process's own memory does not count: a child made by `posix_spawn` (a `vfork`) reports in `ru_maxrss` the
  /// peak of the memory it shared with its parent before `exec` (the kernel keeps the larger of the two), which
  /// is this harness's, 40–180 MB here. A `python3` launcher forks the program instead and reports its
  /// `ru_maxrss`; the floor that leaves is the launcher's own (~10 MB, shown by ``launcherFloor``).
  static func peakMemory(_ program: String, _ arguments: [String], in directory: String) throws -> Int {
    let script = """
      import os, sys
      pid = os.fork()
      if pid == 0:
          os.execv(sys.argv[2], sys.argv[2:])
      _, status, usage = os.wait4(pid, 0)
      open(sys.argv[1], "w").write(str(usage.ru_maxrss * 1024) if status == 0 else "failed")
      """
    let output = "/dev/shm/taskq-bench-peak-\(getpid())"
    defer { unlink(output) }
    try run("/usr/bin/python3", ["-c", script, output, program] + arguments, in: directory)
    guard let text = try? readText(output), let bytes = Int(text) else {
      throw Failure(description: "\(([program] + arguments).joined(separator: " ")) failed (peak memory run)")
    }
    return bytes
  }

  /// The peak ``peakMemory(_:_:in:)`` reports for a program that does nothing: its floor.
  static let launcherFloor: Int = (try? peakMemory("/bin/true", [], in: "/")) ?? 0

  private static func readText(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw Failure(description: "cannot read \(path)") }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 64)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { throw Failure(description: "empty \(path)") }
    return String(cString: buffer)
  }

  /// Runs the git CLI in `directory`.
  static func git(_ arguments: String..., in directory: String) throws {
    try run(gitPath, arguments, in: directory)
  }

  static let gitPath: String = {
    for candidate in ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"] where access(candidate, X_OK) == 0 {
      return candidate
    }
    return "/usr/bin/git"
  }()
}

/// Reads a whole file.
func readFile(_ path: String) throws -> [UInt8] {
  guard let file = fopen(path, "rb") else { throw Spawn.Failure(description: "cannot open \(path)") }
  defer { fclose(file) }
  var result: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let n = fread(&buffer, 1, buffer.count, file)
    if n <= 0 { break }
    result.append(contentsOf: buffer[0..<n])
  }
  return result
}

/// Writes a whole file.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
  guard let file = fopen(path, "wb") else { throw Spawn.Failure(description: "cannot write \(path)") }
  defer { fclose(file) }
  _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
}

/// A child started with `posix_spawn` whose standard output is read when it ends (worker processes).
final class SpawnedProcess {
  let pid: pid_t
  let outputPath: String

  init(_ program: String, _ arguments: [String], in directory: String) throws {
    outputPath = "/tmp/taskq-bench-worker.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = spawnAddChdir(&actions, directory)
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    let envp = Spawn.environment.map { strdup($0) } + [nil]
    defer {
      for pointer in argv + envp { free(pointer) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, program, &actions, nil, argv, envp)
    guard rc == 0 else { throw Spawn.Failure(description: "cannot run \(program): \(String(cString: strerror(rc)))") }
    self.pid = pid
  }

  /// Waits for the child and returns the integer it printed, and the CPU time it used.
  func wait() throws -> (value: Int, cpu: Double) {
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let cpu =
      Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
      + Double(usage.ru_stime.tv_usec) / 1e6
    defer { unlink(outputPath) }
    let text = String(decoding: try readFile(outputPath), as: UTF8.self)
    guard status == 0, let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw Spawn.Failure(description: "worker \(pid) failed (status \(status)): \(text)")
    }
    return (value, cpu)
  }
}
