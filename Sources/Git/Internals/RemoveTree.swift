#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Removes a directory tree (best effort), for cleaning up after libgit2.
func removeTree(_ path: String) {
  guard let dir = opendir(path) else {
    unlink(path)
    return
  }
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    if name == "." || name == ".." { continue }
    let child = path + "/" + name
    var info = stat()
    if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
      removeTree(child)
    } else {
      unlink(child)
    }
  }
  closedir(dir)
  rmdir(path)
}
