import CLibGit2

/// An error reported by libgit2, with the code, the class, libgit2's own message and the function that failed.
public struct GitError: Error, Equatable, CustomStringConvertible {
  /// A libgit2 error code (`git_error_code`).
  public struct Code: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let generic = Code(rawValue: GIT_ERROR.rawValue)
    public static let notFound = Code(rawValue: GIT_ENOTFOUND.rawValue)
    public static let exists = Code(rawValue: GIT_EEXISTS.rawValue)
    public static let ambiguous = Code(rawValue: GIT_EAMBIGUOUS.rawValue)
    public static let locked = Code(rawValue: GIT_ELOCKED.rawValue)
    public static let modified = Code(rawValue: GIT_EMODIFIED.rawValue)
    public static let unbornBranch = Code(rawValue: GIT_EUNBORNBRANCH.rawValue)
    public static let invalidSpec = Code(rawValue: GIT_EINVALIDSPEC.rawValue)
    public static let conflict = Code(rawValue: GIT_ECONFLICT.rawValue)
    public static let uncommitted = Code(rawValue: GIT_EUNCOMMITTED.rawValue)
    public static let invalid = Code(rawValue: GIT_EINVALID.rawValue)
    public static let nonFastForward = Code(rawValue: GIT_ENONFASTFORWARD.rawValue)
  }

  public var code: Code
  /// The libgit2 error class (`git_error_t`), 0 when none was set.
  public var errorClass: Int32
  public var message: String
  /// The libgit2 function (or wrapper operation) that failed.
  public var function: String

  public init(code: Code, errorClass: Int32 = 0, message: String, function: String) {
    self.code = code
    self.errorClass = errorClass
    self.message = message
    self.function = function
  }

  public var description: String {
    message.isEmpty ? "\(function) failed (code \(code.rawValue))" : message
  }

  /// Throws a ``GitError`` when `rc` is negative, reading `git_error_last()` at once on this thread.
  @discardableResult
  public static func check(_ rc: Int32, _ function: @autoclosure () -> String = #function) throws -> Int32 {
    guard rc < 0 else { return rc }
    var message = ""
    var errorClass: Int32 = 0
    if let last = git_error_last() {
      if let text = last.pointee.message { message = String(cString: text) }
      errorClass = last.pointee.klass
    }
    throw GitError(code: Code(rawValue: rc), errorClass: errorClass, message: message, function: function())
  }
}
