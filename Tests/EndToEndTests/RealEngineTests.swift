import Foundation
import Orchestrator
import TaskqTestSupport
import Testing

/// A real container engine (rootful Podman behind the `docker` CLI, started by
/// `scripts/engine/podman-engine.sh start`) driven through the real binary. Skipped, with the reason, when no
/// engine answers.
enum RealEngine {
  static let image = "localhost/taskq-standin:latest"

  /// Why the suite cannot run here, or `nil` when it can.
  static let unavailableReason: String? = {
    guard ProcessRunner.resolve("docker") != nil else { return "no 'docker' CLI on PATH" }
    guard
      let version = try? ProcessRunner.run(
        ProcessSpec("docker", ["version", "--format", "{{.Server.Version}}"], timeout: 10)),
      version.succeeded
    else { return "no container engine answers the docker CLI (run scripts/engine/podman-engine.sh start)" }
    guard let inspect = try? ProcessRunner.run(ProcessSpec("docker", ["image", "inspect", image], timeout: 10)),
      inspect.succeeded
    else { return "the stand-in image \(image) is missing (run scripts/engine/podman-engine.sh start)" }
    return nil
  }()

  static func docker(_ arguments: String...) throws -> String {
    let result = try ProcessRunner.run(ProcessSpec("docker", arguments, timeout: 30))
    guard result.succeeded else {
      throw TestFailure("docker \(arguments.joined(separator: " ")): \(result.stderrText)")
    }
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

@Suite(
  .serialized,
  .enabled(if: RealEngine.unavailableReason == nil, "real-engine suite skipped: \(RealEngine.unavailableReason ?? "")"))
struct RealEngineTests {
  let repo: ScratchRepository
  let environment: [String: String]

  init() throws {
    repo = try ScratchRepository()
    let home = repo.directory.path + "/home"
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    environment = ["HOME": home]
    try repo.git("config", "taskq.image", RealEngine.image)
    try repo.git("config", "taskq.worktreesRoot", repo.directory.path + "/worktrees")
    try repo.git("config", "taskq.portRange", "47300-47399")
    try repo.git("config", "taskq.healthTimeout", "20")
  }

  func taskq(_ arguments: String...) throws -> ProcessResult {
    try Taskq.run(arguments, in: repo.path, environment: environment, timeout: 120)
  }

  func record(_ id: String) throws -> [String: Any] {
    let result = try taskq("status", "--id", id, "--json")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any]
    return try #require(object)
  }

  @Test func runReviewAndCleanupDriveARealContainer() throws {
    #expect(try taskq("add", "--id", "RE-1", "--task", "-a prompt that starts with a dash").status == 0)
    let run = try taskq("run", "--max-parallel", "2")
    #expect(run.status == 0, "run failed: \(run.stdoutText) \(run.stderrText)")

    let task = try record("RE-1")
    #expect(task["status"] as? String == "review")
    let name = try #require(task["container"] as? String)
    let port = try #require(task["port"] as? Int)
    let worktree = try #require(task["worktree_path"] as? String)
    #expect(name.hasPrefix("task-RE-1-"))
    #expect((47300...47399).contains(port))

    // Named and labelled as specified, published on 127.0.0.1 only, answering.
    #expect(try RealEngine.docker("inspect", "-f", "{{index .Config.Labels \"git-taskq.task\"}}", name) == "RE-1")
    #expect(try RealEngine.docker("inspect", "-f", "{{index .Config.Labels \"git-taskq.managed\"}}", name) == "true")
    let ports = try RealEngine.docker("port", name)
    #expect(ports.contains("127.0.0.1:\(port)"), "ports: \(ports)")
    #expect(!ports.contains("0.0.0.0"), "ports: \(ports)")
    #expect(Loopback.httpStatus(port: port, path: "/global/health") == 200)

    // The worktree is mounted at its own path and the stage commands ran in the container, in it.
    let mounts = try RealEngine.docker("inspect", "-f", "{{range .Mounts}}{{.Source}}={{.Destination}};{{end}}", name)
    #expect(mounts.contains("\(worktree)=\(worktree)"), "mounts: \(mounts)")
    let plan = try String(contentsOfFile: worktree + "/taskq-standin/make-plan.txt", encoding: .utf8)
    #expect(plan.contains("cwd: \(worktree)"))
    #expect(plan.contains("prompt: -a prompt that starts with a dash"))
    let build = try String(contentsOfFile: worktree + "/taskq-standin/execute-plan.txt", encoding: .utf8)
    #expect(build.contains("--session ses_standin"))
    #expect(task["session_id"] as? String == "ses_standin")

    let review = try taskq("review", "--id", "RE-1", "--print")
    #expect(review.status == 0)
    #expect(review.stdoutText.contains("http://127.0.0.1:\(port)"))

    #expect(try taskq("approve", "--id", "RE-1").status == 0)
    // The stand-in left files in the worktree: cleanup keeps it unless --force, but removes the container.
    let cleanup = try taskq("cleanup")
    #expect(cleanup.status == 0)
    #expect(cleanup.stdoutText.contains("kept worktree"))
    let gone = try ProcessRunner.run(ProcessSpec("docker", ["inspect", name], timeout: 30))
    #expect(!gone.succeeded, "container \(name) still exists after cleanup")
    #expect(FileManager.default.fileExists(atPath: worktree))
    #expect(try taskq("cleanup", "--id", "RE-1", "--force").status == 0)
    #expect(!FileManager.default.fileExists(atPath: worktree))
    #expect(try repo.git("branch", "--list", "task/RE-1") == "task/RE-1")
  }

  @Test func aServerThatNeverAnswersFailsTheTaskWithTheContainerLog() throws {
    // An image whose entrypoint exits at once: the container dies before it answers.
    try repo.git("config", "taskq.image", "localhost/taskq-standin-broken:latest")
    try repo.git("config", "taskq.healthTimeout", "10")
    #expect(try taskq("add", "--id", "RE-2", "--task", "never served").status == 0)
    let run = try taskq("run", "--id", "RE-2")
    #expect(run.status == 1)
    let task = try record("RE-2")
    #expect(task["status"] as? String == "failed")
    let errorFile = try #require(task["error_file"] as? String)
    let report = try repo.git("show", errorFile)
    #expect(report.contains("exited before its server answered"), "report: \(report)")
    #expect(report.contains("crashing on purpose"), "the report keeps the container log: \(report)")
    let name = try #require(task["container"] as? String)
    #expect(try taskq("cancel", "--id", "RE-2").status == 0)
    #expect(try taskq("cleanup", "--id", "RE-2", "--force").status == 0)
    #expect(!(try ProcessRunner.run(ProcessSpec("docker", ["inspect", name], timeout: 30))).succeeded)
  }
}
