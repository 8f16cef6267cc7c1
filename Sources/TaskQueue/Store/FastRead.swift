import Git

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only answers from the snapshot cache without libgit2, when they are provably what libgit2 would
/// read: the queue's ref, read straight from its file, names the commit the cache file was built for.
///
/// Loading libgit2 and initialising it costs ~7 ms (its dependency tree and its CA certificates); shell
/// completion of task ids needs neither when the cache is current. Anything this reader does not handle
/// exactly as libgit2 would is a `nil`, and the caller takes the libgit2 path: a repository located by
/// `GIT_*` variables, a gitfile (linked worktree, submodule), a bare repository, a git directory or working
/// directory not owned by this user (libgit2's `safe.directory` check stays libgit2's), repository
/// extensions (reftable, SHA-256), a symbolic or unreadable ref, a crossed file-system boundary, no queue,
/// a missing or stale cache, `TASKQ_NO_CACHE`.
public enum FastRead {
  /// A task's id and status, as completion offers them.
  public struct TaskState: Sendable, Equatable {
    public var id: String
    public var status: TaskStatus

    public init(id: String, status: TaskStatus) {
      self.id = id
      self.status = status
    }
  }

  /// Every task's id and status in the queue around the current directory, in the order
  /// ``QueueSnapshot/records()`` returns them; `nil` when the cache cannot answer provably.
  public static func taskStates() -> [TaskState]? {
    guard let index = currentIndex() else { return nil }
    return index.entries.map { TaskState(id: $0.id, status: $0.status) }
  }

  /// The cache's index when it is current for the queue around the current directory.
  static func currentIndex() -> RecordIndex? {
    guard SnapshotCache.isEnabled, !hasRepositoryEnvironment(), let gitDirectory = gitDirectory(),
      let tip = queueTip(gitDirectory: gitDirectory),
      let index = CacheFile.load(atPath: gitDirectory + "taskq/" + CacheFile.name), index.commit == tip
    else { return nil }
    return index
  }

  /// The variables with which git (and libgit2's `GIT_REPOSITORY_OPEN_FROM_ENV`) finds another repository,
  /// or its objects and refs elsewhere.
  static let repositoryVariables = [
    "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
  ]

  static func hasRepositoryEnvironment() -> Bool {
    repositoryVariables.contains { getenv($0) != nil }
  }

  /// The git directory (ending in `/`) of the repository around the current directory, when it is a
  /// plain `.git` directory of a working directory, both owned by this user, without extensions.
  static func gitDirectory() -> String? {
    guard var directory = currentDirectory() else { return nil }
    var start = stat()
    guard stat(directory, &start) == 0 else { return nil }
    while true {
      var info = stat()
      // A directory that is itself a git directory (a bare repository, or inside `.git`): libgit2's.
      if stat(directory + "/HEAD", &info) == 0, stat(directory + "/objects", &info) == 0 { return nil }
      let candidate = (directory == "/" ? "" : directory) + "/.git"
      if lstat(candidate, &info) == 0 {
        // A gitfile (linked worktree, submodule) or a symbolic link: libgit2's.
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else { return nil }
        var workdir = stat()
        guard stat(directory, &workdir) == 0, workdir.st_uid == geteuid() else { return nil }
        // A `.git` directory that is not a repository (no HEAD, objects or refs) is one libgit2 passes over
        // on its way up: leave that walk to it.
        for part in ["HEAD", "objects", "refs"] where stat(candidate + "/" + part, &info) != 0 { return nil }
        return isPlainGitDirectory(candidate + "/") ? candidate + "/" : nil
      }
      guard errno == ENOENT, directory != "/" else { return nil }
      directory = parent(of: directory)
      var up = stat()
      // libgit2 stops at a file-system boundary unless told otherwise: leave that to it.
      guard stat(directory, &up) == 0, up.st_dev == start.st_dev else { return nil }
    }
  }

  /// Whether `gitDirectory` has the layout this reader knows: no `commondir` (a linked worktree's), no
  /// reftable, and a plain configuration (``isPlainConfiguration(_:)``).
  static func isPlainGitDirectory(_ gitDirectory: String) -> Bool {
    var info = stat()
    guard stat(gitDirectory + "commondir", &info) != 0, errno == ENOENT else { return false }
    guard stat(gitDirectory + "reftable", &info) != 0, errno == ENOENT else { return false }
    guard let config = readSmallFile(gitDirectory + "config", limit: 1 << 20) else { return false }
    return isPlainConfiguration(String(decoding: config, as: UTF8.self))
  }

  /// Whether a repository's configuration leaves libgit2 nothing to decide that this reader does not: no
  /// extensions (ref or object format), no includes (whose files could say anything), no `worktree`
  /// (`core.worktree` moves the working directory whose owner libgit2 checks), format version 0, not bare.
  /// Conservative: a word in a value (a remote's URL) also sends the command down libgit2's path.
  static func isPlainConfiguration(_ text: String) -> Bool {
    for raw in text.lowercased().split(whereSeparator: \.isNewline) {
      let line = raw.filter { !$0.isWhitespace }
      if line.hasPrefix("#") || line.hasPrefix(";") { continue }
      if line.contains("extensions") || line.contains("include") || line.contains("worktree") { return false }
      if line.hasPrefix("repositoryformatversion"), line != "repositoryformatversion=0" { return false }
      if line.hasPrefix("bare"), line != "bare=false" { return false }
    }
    return true
  }

  /// The commit `refs/taskq/queue` names, from its loose file or else `packed-refs`; `nil` when it does
  /// not exist or is anything but a plain id.
  static func queueTip(gitDirectory: String) -> ObjectID? {
    if let loose = readSmallFile(gitDirectory + Layout.refName, limit: 4096) {
      guard loose.count == 41, loose.last == UInt8(ascii: "\n") else { return nil }
      return ObjectID(hex: String(decoding: loose.dropLast(), as: UTF8.self))
    }
    guard errno == ENOENT, let packed = readSmallFile(gitDirectory + "packed-refs", limit: 64 << 20) else {
      return nil
    }
    let suffix = " " + Layout.refName
    for line in String(decoding: packed, as: UTF8.self).split(separator: "\n") where line.hasSuffix(suffix) {
      guard line.utf8.count == 40 + suffix.utf8.count else { return nil }
      return ObjectID(hex: String(line.prefix(40)))
    }
    return nil
  }

  /// The working directory, physical (as `getcwd` gives it).
  static func currentDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return nil }
    let path = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return path.hasPrefix("/") ? path : nil
  }

  static func parent(of directory: String) -> String {
    guard let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else { return "/" }
    return String(directory[..<slash])
  }

  /// The bytes of the regular file at `path` (up to `limit`), or `nil` with `errno` set.
  static func readSmallFile(_ path: String, limit: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= limit else {
      errno = EINVAL
      return nil
    }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = read(fd, &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      guard n >= 0 else { return nil }
      if n == 0 { return bytes }
      bytes.append(contentsOf: chunk[0..<n])
      guard bytes.count <= limit else {
        errno = EINVAL
        return nil
      }
    }
  }
}
