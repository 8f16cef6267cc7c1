# The fake OpenCode server that the fake `docker run … serve` starts on 127.0.0.1:<host port>:
# GET /global/health answers 200 with a small JSON body; with FAKE_SERVER_PASSWORD set (the container's
# OPENCODE_SERVER_PASSWORD), every request needs HTTP basic auth as user `opencode`, else 401, as the
# real server does. Usage: python3 fake-opencode-server.py PORT
import base64
import http.server
import os
import sys

PORT = int(sys.argv[1])
PASSWORD = os.environ.get("FAKE_SERVER_PASSWORD", "")
EXPECTED = "Basic " + base64.b64encode(("opencode:" + PASSWORD).encode()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body=b""):
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="opencode"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if PASSWORD and self.headers.get("Authorization") != EXPECTED:
            self.reply(401)
        elif self.path == "/global/health":
            self.reply(200, b'{"healthy":true,"version":"fake"}\n')
        else:
            self.reply(404)


http.server.ThreadingHTTPServer.allow_reuse_address = True
print(f"fake opencode server listening on 127.0.0.1:{PORT}", file=sys.stderr, flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
