import Foundation
import Orchestrator
import TaskqTestSupport
import Testing

/// libgit2 is loaded at run time (Sources/CLibGit2Loader), not linked: commands that do not open a
/// repository run without it, and a machine without it gets one line saying what to install.
@Suite struct LibGit2LoadingTests {
  /// What the loader loads instead of `libgit2.so.1.5`: a file that does not exist.
  static let missing = ["TASKQ_LIBGIT2": "/nonexistent/libgit2.so.1.5"]

  @Test func commandsWithoutARepositoryNeverLoadLibgit2() throws {
    let repository = try ScratchRepository()
    let version = try repository.taskq("--version", environment: Self.missing)
    #expect(version.status == 0)
    #expect(!version.stdoutText.isEmpty)
    #expect(version.stderrText.isEmpty)
    let completion = try repository.taskq(["__complete", "--", "st"], environment: Self.missing)
    #expect(completion.status == 0)
    #expect(completion.stdoutText.contains("status"))
    #expect(completion.stderrText.isEmpty)
  }

  @Test func missingLibgit2IsOneLineNamingThePackage() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let tipBefore = try repository.queueTip()
    for arguments in [["status"], ["add", "--id", "T-2", "--task", "x"], ["cancel", "--id", "T-1"]] {
      let result = try repository.taskq(arguments, environment: Self.missing)
      #expect(result.status == 1, "\(arguments)")
      let lines = result.stderrText.split(separator: "\n")
      #expect(lines.count == 1, "\(arguments): \(result.stderrText)")
      #expect(lines.first?.hasPrefix("error: cannot load libgit2 ") == true)
      #expect(result.stderrText.contains("/nonexistent/libgit2.so.1.5: cannot open shared object file"))
      #expect(result.stderrText.contains("apt-get install libgit2-"))
      #expect(result.stdoutText.isEmpty)
    }
    #expect(try repository.queueTip() == tipBefore)
  }

  @Test func aLibraryWithoutLibgit2sFunctionsIsNamed() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("status", environment: ["TASKQ_LIBGIT2": "libc.so.6"])
    #expect(result.status == 1)
    #expect(result.stderrText.hasPrefix("error: 'libc.so.6' has no function 'git_"))
    #expect(result.stderrText.split(separator: "\n").count == 1)
  }

  /// The binary has no libgit2 among its needed libraries (the point of loading it lazily).
  @Test func binaryDoesNotNeedLibgit2() throws {
    let dynamic = try ProcessRunner.run(ProcessSpec("/usr/bin/readelf", ["-d", Taskq.binary], timeout: 30))
    try #require(dynamic.succeeded, "readelf: \(dynamic.stderrText)")
    let needed = dynamic.stdoutText.split(separator: "\n").filter { $0.contains("(NEEDED)") }
    #expect(!needed.isEmpty)
    #expect(!needed.contains { $0.contains("libgit2") }, "\(needed)")
  }

  /// libgit2's CA-certificate loading (mbedTLS, in `git_libgit2_init`) binds to the executable's no-op
  /// versions (Sources/CLibGit2Loader/NoCertificates.c), so no command parses the system's certificates.
  @Test func libgit2BindsItsCertificateLoadingToTheExecutable() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let result = try repository.taskq(["status", "--id", "T-1"], environment: ["LD_DEBUG": "bindings"])
    #expect(result.status == 0, "\(result.summary)")
    let bindings = result.stderrText.split(separator: "\n").filter {
      $0.contains("libgit2.so") && $0.contains("`mbedtls_x509_crt_parse_file'")
    }
    try #require(
      !bindings.isEmpty, "libgit2 never looked up mbedtls_x509_crt_parse_file: \(result.stderrText.suffix(500))")
    #expect(bindings.allSatisfy { $0.contains("/git-taskq [0]: normal symbol") }, "\(bindings)")
  }
}
