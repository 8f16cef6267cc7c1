// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "git-taskq",
  products: [
    .executable(name: "git-taskq", targets: ["git-taskq"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    .systemLibrary(
      name: "CLibGit2",
      path: "CLibGit2",
      pkgConfig: "libgit2",
      providers: [.apt(["libgit2-dev"])]
    ),
    // Thin, safe Swift wrapper of libgit2: owns every git_* pointer.
    .target(name: "Git", dependencies: ["CLibGit2"], exclude: ["README.md"]),
    // The queue domain: records, states, task files, the git-backed store.
    .target(name: "TaskQueue", dependencies: ["Git"]),
    // Running tasks: worker pool, pipeline, adapters for docker/opencode/openchamber.
    .target(name: "Orchestrator", dependencies: ["TaskQueue", "Git"]),
    // The executable: argument parsing and printing only.
    .executableTarget(
      name: "git-taskq",
      dependencies: [
        "Orchestrator", "TaskQueue",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // Shared test support: scratch repositories, binary runner, fake executables.
    .target(
      name: "TaskqTestSupport", dependencies: ["Git", "TaskQueue", "Orchestrator"], path: "Tests/TaskqTestSupport"),
    .testTarget(name: "GitTests", dependencies: ["Git", "TaskqTestSupport"]),
    .testTarget(name: "TaskQueueTests", dependencies: ["TaskQueue", "TaskqTestSupport"]),
    .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "TaskQueue", "TaskqTestSupport"]),
    .testTarget(
      name: "EndToEndTests",
      dependencies: ["TaskqTestSupport", "TaskQueue", "Orchestrator"],
      resources: [.copy("Fixtures")]
    ),
    // Benchmark harness: `swift run -c release taskq-bench` (see docs/performance.md).
    .executableTarget(name: "taskq-bench", dependencies: ["TaskQueue", "Git"], path: "Benchmarks/taskq-bench"),
  ]
)

for target in package.targets where target.type != .system {
  var settings = target.swiftSettings ?? []
  settings.append(.enableUpcomingFeature("ExistentialAny"))
  target.swiftSettings = settings
}
