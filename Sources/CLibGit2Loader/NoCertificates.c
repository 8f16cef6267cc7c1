// libgit2's initialisation (`git_libgit2_init`) loads the system's CA certificates for its HTTPS transport
// (Debian builds it with mbedTLS: `mbedtls_x509_crt_parse_file` on /etc/ssl/certs/ca-certificates.crt),
// ~3 ms of base64 and ASN.1 parsing on every command that opens a repository. git-taskq never uses
// libgit2's transports (fetch and push go through the git CLI), and libgit2 1.5 has no option to skip the
// load. These two definitions, exported from the git-taskq executable (Package.swift:
// `--export-dynamic-symbol`), are what the dynamic linker binds libgit2's calls to when Loader.c dlopens it
// (the executable comes first in the global lookup scope): they load nothing and report success. A TLS
// connection made by libgit2 in this process would then trust no certificate, so it fails closed; none is
// ever made. Nothing else in the process uses mbedTLS. Test binaries do not export them and keep the
// real functions.

#include <stddef.h>

__attribute__((visibility("default"))) int mbedtls_x509_crt_parse_file(void *chain, const char *path) {
  (void)chain;
  (void)path;
  return 0;
}

__attribute__((visibility("default"))) int mbedtls_x509_crt_parse_path(void *chain, const char *path) {
  (void)chain;
  (void)path;
  return 0;
}
