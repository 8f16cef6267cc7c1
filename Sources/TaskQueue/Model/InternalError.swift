/// A state that should be impossible: a bug of ours, with where it was found.
///
/// Carried by ``QueueError/internalError(_:)``, whose message asks for a bug report. The place is kept for
/// that report and for tests; the one-line message stays what a user can act on.
public struct InternalError: Error, Equatable, Sendable, CustomStringConvertible {
  /// What was found, e.g. "a queue update without an operation".
  public var what: String
  /// The source file (`Module/File.swift`) and line that found it.
  public var file: String
  public var line: Int

  public init(_ what: String, file: StaticString = #fileID, line: UInt = #line) {
    self.what = what
    self.file = "\(file)"
    self.line = Int(line)
  }

  public var description: String { "\(what) (\(file):\(line))" }
}
