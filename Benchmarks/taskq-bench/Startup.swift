import Foundation

/// Start-up (issue 15): the CPU time of git-taskq's shortest commands next to git's own, measured in the
/// same run, alternating, so that the machine's load weighs on both alike.
extension Suite {
  /// The targets of issue 15, in ms of CPU time (user + system) on this machine.
  enum StartupTarget {
    static let version = 6.0
    static let oneRecord = 10.0
    static let completion = 10.0
  }

  func measureStartup() throws {
    let repo = try BenchRepository(label: "startup")
    try Spawn.run(binary, ["add", "--id", "S-1", "--task", "Start-up probe."], in: repo.path)
    let git = Spawn.gitPath
    let probes: [(label: String, program: String, arguments: [String], target: Double?)] = [
      ("git --version", git, ["--version"], nil),
      ("git-taskq --version", binary, ["--version"], StartupTarget.version),
      ("git rev-parse HEAD", git, ["rev-parse", "HEAD"], nil),
      ("git taskq status --id S-1 (one record)", binary, ["status", "--id", "S-1"], StartupTarget.oneRecord),
      (
        "git taskq __complete -- approve --id ''", binary, ["__complete", "--", "approve", "--id", ""],
        StartupTarget.completion
      ),
    ]
    // At least 31 runs of each: start-up is a few ms, and the load of a shared machine is uneven.
    let runs = max(31, options.runs)
    var timings = Array(repeating: [Timing](), count: probes.count)
    for round in 0...runs {
      for (index, probe) in probes.enumerated() {
        let timing = try Spawn.run(probe.program, probe.arguments, in: repo.path)
        if round > 0 { timings[index].append(timing) }  // round 0 warms the page cache
      }
    }
    let samples = timings.map(Sample.init)
    let gitVersion = samples[0].cpuMedian
    let gitRevParse = samples[2].cpuMedian
    for (index, probe) in probes.enumerated() {
      let sample = samples[index]
      let reference = probe.program == git ? nil : index <= 1 ? gitVersion : gitRevParse
      let ratio = reference.map { String(format: "; %.1f× git's", sample.cpuMedian / $0) } ?? ""
      results.add(
        Row(
          measure: "start-up: \(probe.label)", tasks: "1", value: "\(ms(sample.cpuMedian)) cpu",
          target: probe.target.map { "≤ \(Int($0)) ms" } ?? "", met: probe.target.map { sample.cpuMedian <= $0 },
          note: "median CPU (user+sys) of \(runs) alternating runs; wall \(ms(sample.median))\(ratio)"))
    }
  }
}
