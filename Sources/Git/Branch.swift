import CLibGit2

extension Repository {
  /// Whether the local branch `name` exists.
  public func branchExists(_ name: String) throws -> Bool {
    try referenceTarget("refs/heads/" + name) != nil
  }

  /// Creates the local branch `name` at `commit`; does nothing when it already exists (an earlier attempt's
  /// commits are never reset).
  ///
  /// - Returns: whether the branch was created.
  @discardableResult
  public func createBranch(_ name: String, at commit: ObjectID) throws -> Bool {
    if try branchExists(name) { return false }
    var ref: OpaquePointer?
    let rc = try self.commit(commit).withPointer { git_branch_create(&ref, pointer, name, $0, 0) }
    if rc == GIT_EEXISTS.rawValue { return false }
    try GitError.check(rc, "git_branch_create")
    git_reference_free(ref)
    return true
  }
}
