import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

/// Secrets stay out of the shared ref: a failure report redacts the value of a secret-looking variable
/// (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`) that the agent printed, in its stdout and stderr tails.
@Suite struct SecretsTests {
  @Test(arguments: ["MY_API_TOKEN", "OPENAI_API_KEY", "DB_SECRET", "SMTP_PASSWORD"])
  func aFailureReportRedactsASecretTheAgentPrinted(name: String) throws {
    let world = try FakeWorld()
    let secret = "s3cr3t-\(UUID().uuidString)"
    try world.repository.addTask("T-1")
    let result = try world.taskq(
      "run", "--runtime", "local",
      environment: [name: secret, "FAKE_OPENCODE_PRINT_VAR": name, "FAKE_OPENCODE_FAIL": "make-plan"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(try world.record("T-1").status == .failed)
    let report = try world.errorReport("T-1")
    #expect(report.contains("using \(name)=[redacted]"), "\(report)")
    #expect(report.contains("auth failed with [redacted]"), "\(report)")
    #expect(!report.contains(secret))
    // Nowhere in the ref: not in any commit's message or any blob of its history.
    let history = try world.repository.git("log", "-p", "--format=%B", "refs/taskq/queue")
    #expect(history.contains("[redacted]"))
    #expect(!history.contains(secret))
    #expect(try world.repository.git("grep", "-c", "redacted", "refs/taskq/queue").isEmpty == false)
  }
}
