/// Decodes a NUL-terminated C string, or `nil` for a null pointer (never a force unwrap on C data).
func string(_ pointer: UnsafePointer<CChar>?) -> String? {
  guard let pointer else { return nil }
  return String(cString: pointer)
}
