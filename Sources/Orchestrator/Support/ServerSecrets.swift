import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Per-task OpenCode server passwords, kept only on this machine: `<git common dir>/taskq/secrets/<id>`,
/// mode 0600 in a 0700 directory. Never in the queue (which is shared).
public struct ServerSecrets {
  public let directory: String

  public init(commonDirectory: String) {
    let base = Paths.trimmingTrailingSlashes(commonDirectory)
    directory = (base == "/" ? "" : base) + "/taskq/secrets"
  }

  /// `<directory>/<id>`, through ``SafePath``: an id that would leave the directory is refused.
  public func path(for id: String) throws -> String { try SafePath.join(directory, id) }

  /// The task's password, made (32 random hex digits) when it has none yet.
  public func password(for id: String) throws -> String {
    if let existing = existing(for: id) { return existing }
    mkdir(PathName.deletingLastComponent(directory), 0o755)
    mkdir(directory, 0o700)
    chmod(directory, 0o700)
    var generator = SystemRandomNumberGenerator()
    let secret = (0..<16).map { _ in twoHexDigits(UInt8.random(in: 0...255, using: &generator)) }.joined()
    let fd = open(try path(for: id), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw StageFailure(
        stage: "container",
        summary: "cannot store the server password in \(directory): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    fchmod(fd, 0o600)
    Output.write(secret, to: fd)
    return secret
  }

  /// The task's password if one was made on this machine.
  public func existing(for id: String) -> String? {
    // An id SafePath refuses has no password file, and an unreadable file is no password: the server then
    // answers 401 and `review` says the server does not answer, which is what is wrong.
    guard let path = try? path(for: id), let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      return nil
    }
    let trimmed = text.trimmingWhitespace()
    return trimmed.isEmpty ? nil : trimmed
  }

  public func remove(for id: String) {
    // An id SafePath refuses never had a password file here: nothing to remove.
    guard let path = try? path(for: id) else { return }
    unlink(path)
  }

  /// `Basic base64(opencode:<password>)`, what OpenCode's server expects.
  public static func authorization(_ password: String) -> String {
    "Basic " + Data("opencode:\(password)".utf8).base64EncodedString()
  }
}
