# git's smart HTTP protocol on 127.0.0.1 for tests: every request is handed to `git http-backend` as CGI,
# with only Python's standard library (no web server to install; http.server's CGIHTTPRequestHandler is
# deprecated and takes no chunked request bodies, which git sends for larger pushes, so the CGI call is
# made here). Every repository under ROOT is served, for fetch and push (REMOTE_USER is set, which is what
# enables receive-pack by default).
#
# Usage: python3 git-http-server.py PORT ROOT [--refuse-push MESSAGE [STATUS]]
#   --refuse-push MESSAGE: every push (receive-pack) is answered 403 Forbidden (or STATUS: 401 asks for
#   credentials) with MESSAGE as a text/plain body, as a hosting service answers a user without write
#   access (git prints it as "remote: MESSAGE").
import http.server
import os
import subprocess
import sys

PORT = int(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
REFUSAL = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--refuse-push" else None
REFUSAL_STATUS = int(sys.argv[5]) if REFUSAL is not None and len(sys.argv) > 5 else 403


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        sys.stderr.write("git-http-server: " + (format % args) + "\n")

    def body(self):
        """The request body, with a chunked transfer encoding undone."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_git(self):
        path, _, query = self.path.partition("?")
        data = self.body() if self.command == "POST" else b""
        if REFUSAL is not None and (path.endswith("/git-receive-pack") or "service=git-receive-pack" in query):
            headers = [("Content-Type", "text/plain")]
            if REFUSAL_STATUS == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="git"'))
            self.reply(REFUSAL_STATUS, headers, (REFUSAL + "\n").encode())
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "taskq",
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(data)),
        }
        for name in ("Content-Encoding", "Git-Protocol", "Accept"):
            if self.headers.get(name):
                env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
        result = subprocess.run(
            ["git", "http-backend"], input=data, env=env, capture_output=True, timeout=120
        )
        head, _, body = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, body = result.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        if result.returncode != 0 and not result.stdout:
            status, headers, body = 500, [("Content-Type", "text/plain")], result.stderr
        self.reply(status, headers, body)

    do_GET = handle_git
    do_POST = handle_git


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.daemon_threads = True
print(f"git-http-server: serving {ROOT} on 127.0.0.1:{PORT}", file=sys.stderr, flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
