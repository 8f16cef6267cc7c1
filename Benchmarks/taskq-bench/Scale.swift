import Foundation
import Git
import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

/// The measurements of issue 15: listing, writing and cleaning up at scale.
extension Suite {
  /// `status` (collapsed, `--all`, `--json`) and its memory, `add` and one transition at
  /// ``Options/largeSize`` tasks (100,000 by default), in one repository.
  func measureScale() throws {
    let size = options.largeSize
    guard size > 0 else { return }
    let repo = try BenchRepository(label: "scale")
    try repo.populate(size, mix: .lived)
    try repo.pack()
    let label = tasksLabel(size)
    let runs = min(options.runs, 7)
    // The first `status` builds the snapshot cache (a full read); every later one reads the cache.
    let build = try Spawn.run(binary, ["status"], in: repo.path)
    results.add(
      Row(
        measure: "status, building the cache (once)", tasks: label, value: ms(build.wall * 1000), target: "",
        met: nil, note: "cpu \(ms(build.cpu * 1000))"))
    let status = try time(["status"], in: repo, runs: runs)
    results.add(
      Row(
        measure: "status", tasks: label, value: ms(status.median), target: "≤ 100 ms",
        met: status.median <= 100, note: "\(status.spread); \(runs) runs"))
    let peak = try Spawn.peakMemory(binary, ["status"], in: repo.path)
    results.add(
      Row(
        measure: "status, peak memory", tasks: label, value: megabytes(peak), target: "≤ 150 MB",
        met: Double(peak) / 1_048_576 <= 150,
        note: "ru_maxrss of a forked child (launcher floor \(megabytes(Spawn.launcherFloor)))"))
    let all = try time(["status", "--all"], in: repo, runs: runs)
    results.add(
      Row(
        measure: "status --all", tasks: label, value: ms(all.median), target: "", met: nil,
        note: "\(all.spread); \(runs) runs"))
    let json = try time(["status", "--json"], in: repo, runs: runs)
    results.add(
      Row(
        measure: "status --json", tasks: label, value: ms(json.median), target: "", met: nil,
        note: "\(json.spread); \(runs) runs"))
    var counter = 0
    func addOne() throws -> Timing {
      counter += 1
      return try Spawn.run(
        binary, ["add", "--id", "L-\(counter)", "--task", "Benchmark addition \(counter)"], in: repo.path)
    }
    _ = try addOne()
    let adds = Sample(try (0..<runs).map { _ in try addOne() })
    results.add(
      Row(
        measure: "add", tasks: label, value: ms(adds.median), target: "≤ 12 ms", met: adds.median <= 12,
        note: "\(adds.spread); \(runs) runs"))
    let store = QueueStore(repository: try Repository.open(at: repo.path), worker: "bench:transition")
    let ids = try todoIDs(repo, count: runs + 1)
    try store.cancel(ids[0])
    let cancels = Sample(try ids.dropFirst().map { id in try Clock.measure { try store.cancel(id) }.0 })
    results.add(
      Row(
        measure: "one transition in process (cancel)", tasks: label, value: ms(cancels.median), target: "≤ 1 ms",
        met: cancels.median <= 1, note: "\(cancels.spread); QueueStore.cancel"))
  }

  // MARK: cleanup on the real engine

  /// The image of the real-engine tests (scripts/engine), a busybox stand-in for OpenCode's server.
  static let cleanupImage = "localhost/taskq-standin:latest"
  static let cleanupContainers = 20

  /// `git taskq cleanup` of 20 done tasks, each with its running container, on the real engine (docker CLI);
  /// the row says why it is skipped when no engine answers or the image is missing.
  func measureCleanup() throws {
    let count = Self.cleanupContainers
    let measure = "cleanup: \(count) done tasks with running containers"
    if let reason = Self.engineUnavailable() {
      results.add(Row(measure: measure, tasks: "", value: "skipped", target: "≤ 2 s", met: nil, note: reason))
      return
    }
    var times: [Timing] = []
    var starts: [Double] = []
    for _ in 0..<3 {
      let repo = try BenchRepository(label: "cleanup")
      try repo.populate(count, mix: .doneWithContainers)
      try repo.pack()
      let store = QueueStore(repository: try Repository.open(at: repo.path), worker: "bench:cleanup")
      let records = try store.snapshot().records()
      let queue = try Repository.open(at: repo.path).commonDirectory
      let start = Clock.now()
      try Self.startContainers(records, queue: Self.trimmingSlashes(queue), repository: repo.path)
      starts.append(Clock.now() - start)
      let names = records.compactMap(\.container)
      times.append(try Spawn.run(binary, ["cleanup"], in: repo.path))
      let left = names.filter { Self.docker(["inspect", "--type", "container", "-f", "{{.Name}}", $0]) != nil }
      guard left.isEmpty else {
        for name in left { _ = Self.docker(["rm", "-f", name]) }
        throw Spawn.Failure(
          description: "cleanup left \(left.count) containers behind: \(left.joined(separator: ", "))")
      }
    }
    let sample = Sample(times)
    let startMedian = starts.sorted()[starts.count / 2]
    results.add(
      Row(
        measure: measure, tasks: "", value: String(format: "%.2f s", sample.median / 1000), target: "≤ 2 s",
        met: sample.median <= 2000,
        note:
          "median of 3 rounds; cpu \(ms(sample.cpuMedian)) (git-taskq only); starting the \(count) containers, 8 at a time: "
          + String(format: "%.2f s", startMedian)))
  }

  /// Why the real engine cannot be used here, or `nil`.
  static func engineUnavailable() -> String? {
    guard Self.docker(["version", "--format", "{{.Server.Version}}"]) != nil else {
      return "no container engine answers 'docker version'"
    }
    guard Self.docker(["image", "inspect", "--format", "{{.Id}}", cleanupImage]) != nil else {
      return "the image \(cleanupImage) is missing (scripts/engine/podman-engine.sh start makes it)"
    }
    return nil
  }

  /// Starts each record's container as `git taskq run` does (name, the four labels, `--init`), 8 at a time.
  static func startContainers(_ records: [TaskRecord], queue: String, repository: String) throws {
    let failures = FailureLog()
    let group = DispatchGroup()
    for lane in 0..<8 {
      group.enter()
      let thread = Thread {
        defer { group.leave() }
        for index in stride(from: lane, to: records.count, by: 8) {
          let record = records[index]
          guard let name = record.container else { continue }
          let arguments = [
            "run", "-d", "--init", "--name", name, "--label", "git-taskq.managed=true", "--label",
            "git-taskq.task=\(record.id)", "--label", "git-taskq.repo=\(repository)", "--label",
            "git-taskq.queue=\(queue)", cleanupImage, "serve", "--hostname", "0.0.0.0", "--port", "4096",
          ]
          if Self.docker(arguments) == nil { failures.append(name) }
        }
      }
      thread.start()
    }
    group.wait()
    guard failures.all.isEmpty else {
      throw Spawn.Failure(description: "docker run failed for \(failures.all.joined(separator: ", "))")
    }
  }

  /// Runs the docker CLI; its standard output, or `nil` when it failed.
  static func docker(_ arguments: [String]) -> String? {
    let candidates: [String] = ["/usr/bin/docker", "/usr/local/bin/docker", "/bin/docker"]
    guard let path = candidates.first(where: { access($0, X_OK) == 0 }) else { return nil }
    let output = "/var/tmp/taskq-bench-docker.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(output) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = Spawn.environment.map { strdup($0) } + [nil]
    defer {
      for pointer in argv + envp { free(pointer) }
    }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, &actions, nil, argv, envp) == 0 else { return nil }
    // A minute at most: an engine that hangs must not hang the benchmark.
    var status: Int32 = 0
    let deadline = Clock.now() + 60
    while true {
      let reaped = waitpid(pid, &status, WNOHANG)
      if reaped == pid || (reaped < 0 && errno != EINTR) { break }
      if Clock.now() > deadline {
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return nil
      }
      usleep(2_000)
    }
    guard status == 0, let bytes = try? readFile(output) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func trimmingSlashes(_ path: String) -> String {
    var path = path
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path
  }
}

/// `12.3 MB`.
func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
