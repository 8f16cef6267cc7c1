import CLibGit2

extension Repository {
  /// Paths with uncommitted changes or untracked files in this repository's working directory (ignored
  /// files excluded). Empty means nothing would be lost by deleting it.
  public func uncommittedChanges() throws -> [String] {
    var options = git_status_options()
    try GitError.check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)), "git_status_options_init")
    options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
    options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue
    var list: OpaquePointer?
    try GitError.check(git_status_list_new(&list, pointer, &options), "git_status_list_new")
    defer { git_status_list_free(list) }
    var paths: [String] = []
    for index in 0..<git_status_list_entrycount(list) {
      guard let entry = git_status_byindex(list, index) else { continue }
      let delta = entry.pointee.index_to_workdir ?? entry.pointee.head_to_index
      if let path = delta.flatMap({ string($0.pointee.new_file.path) }) { paths.append(path) }
    }
    return paths
  }
}
