# Writes a git fast-import stream of a queue with N valid todo tasks (and, with MB > 0, a task T-big whose
# record.json holds a MB-megabyte last_error). Usage: hostile-queue.py N REPO [MB] | git fast-import
import hashlib, json, sys
n = int(sys.argv[1]); repo = sys.argv[2]; big = int(sys.argv[3]) if len(sys.argv) > 3 else 0
out = sys.stdout.buffer
def blob(data):
    out.write(b"data %d\n" % len(data)); out.write(data); out.write(b"\n")
files = []
ts = "2026-11-25T10:15:00+00:00"
for i in range(1, n + 1):
    tid = "T-%05d" % i
    bb = hashlib.sha256(tid.encode()).hexdigest()[:2]
    d = "tasks/%s/%s" % (bb, tid)
    rec = {"attempt": 0, "base": "main", "branch": "task/" + tid, "container": None, "created_at": ts,
           "depends_on": [], "error_file": None, "id": tid, "last_error": None, "lease_expires_at": None,
           "port": None, "priority": 0, "repo": repo, "seq": i, "session_id": None, "status": "todo",
           "status_changed_at": ts, "task_file": "refs/taskq/queue:%s/task.md" % d, "updated_at": ts,
           "worker": None, "worktree_path": None}
    files.append((d + "/record.json", (json.dumps(rec, indent=2, sort_keys=True) + "\n").encode()))
    files.append((d + "/task.md", ("---\nid: %s\n---\nTask number %d.\n" % (tid, i)).encode()))
if big:
    tid = "T-big"; bb = hashlib.sha256(tid.encode()).hexdigest()[:2]; d = "tasks/%s/%s" % (bb, tid)
    rec = json.loads(files[0][1]); rec.update({"id": tid, "branch": "task/T-big", "seq": n + 1, "task_file": "refs/taskq/queue:%s/task.md" % d, "last_error": "x" * (big << 20)})
    files.append((d + "/record.json", json.dumps(rec).encode()))
    files.append((d + "/task.md", b"---\nid: T-big\n---\nBig.\n"))
files.append(("taskq.json", (json.dumps({"format": 1, "next_seq": n + 2}) + "\n").encode()))
msg = ("tasks: %d added (import)\n\nTaskq-Op: import\nTaskq-To: todo\n" % n + "".join("Taskq-Task: T-%05d\n" % i for i in range(1, n + 1))
       + ("Taskq-Task: T-big\n" if big else "") + "Taskq-Worker: gen:1\n").encode()
out.write(b"commit refs/taskq/queue\ncommitter gen <gen@x> 1764000000 +0000\n")
blob(msg)
for path, data in files:
    out.write(("M 100644 inline %s\n" % path).encode()); blob(data)
out.write(b"\n")
