"""A FUSE filesystem for the share tests: serves a real folder (its clips),
and can, per path and per call, delay a call, hang it until released, fail
it with EIO or EACCES, or make the path vanish; like an NFS or SMB share
that answers slowly, stops answering, fails reads or loses files.

Usage: fault-fs.py SOURCE MOUNTPOINT CONTROL_SOCKET

Rules come over a Unix socket, one JSON object per line, answered with one
JSON line:
  {"cmd": "rule", "op": "getattr", "path": "/a/b.mp4", "action": "hang"}
      op: getattr, readdir, open, read, or "*"; path: from the mount's root;
      action: hang, delay (with "ms"), eio, eacces, vanish;
      "exclude_pid": a process whose calls the rule leaves alone;
      "only_pid": the one process whose calls the rule applies to.
  {"cmd": "hung"}   the calls hanging now: [{"op", "path", "pid"}]
  {"cmd": "clear"}  drops every rule and answers every hanging call
  {"cmd": "calls", "op": "readdir", "under": "/tree"}
                    how many such calls were made on that path or below it
  {"cmd": "ping"}

A hanging call is one the daemon has read from the kernel and does not
answer: its caller waits in the kernel, deaf to SIGKILL, as on a hard NFS
mount. clear answers it (EIO); so does the connection's abort.
"""
import errno
import json
import os
import socket
import stat
import sys
import threading
import time

import fusepy

# A hang is answered after this long whatever happens, so that a test run
# on code that waits for it forever ends instead of hanging the machine.
MAX_HANG_SECONDS = float(os.environ.get("FAULT_FS_MAX_HANG_SECONDS", "300"))


def tgid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return pid


class FaultFs(fusepy.Operations):
    def __init__(self, source):
        self.source = source
        self._mutex = threading.Lock()
        self.rules = []
        self.hanging = {}
        self.next_hang = 0
        self._released = threading.Event()
        self.calls = {}

    def real(self, path):
        return os.path.join(self.source, path.lstrip("/"))

    def vanished(self, path):
        with self._mutex:
            rules = [r for r in self.rules if r["action"] == "vanish"]
        return any(path == r["path"] or path.startswith(r["path"].rstrip("/") + "/") for r in rules)

    def fault(self, op, path):
        """Applies the first rule for this call, if any."""
        caller = tgid_of(fusepy.fuse_get_context()[2])
        with self._mutex:
            self.calls[(op, path)] = self.calls.get((op, path), 0) + 1
            rule = next(
                (
                    r
                    for r in self.rules
                    if r["op"] in (op, "*")
                    and r["path"] == path
                    and r["action"] != "vanish"
                    and r.get("exclude_pid") != caller
                    and r.get("only_pid", caller) == caller
                ),
                None,
            )
            release = self._released
        if self.vanished(path):
            raise fusepy.FuseOSError(errno.ENOENT)
        if rule is None:
            return
        action = rule["action"]
        if action == "delay":
            time.sleep(rule.get("ms", 1000) / 1000)
        elif action == "eio":
            raise fusepy.FuseOSError(errno.EIO)
        elif action == "eacces":
            raise fusepy.FuseOSError(errno.EACCES)
        elif action == "hang":
            with self._mutex:
                key = self.next_hang
                self.next_hang += 1
                self.hanging[key] = {"op": op, "path": path, "pid": caller}
            try:
                release.wait(MAX_HANG_SECONDS)
            finally:
                with self._mutex:
                    self.hanging.pop(key, None)
            raise fusepy.FuseOSError(errno.EIO)

    def getattr(self, path, fh=None):
        self.fault("getattr", path)
        st = os.lstat(self.real(path))
        return {
            key: getattr(st, key)
            for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
        }

    def readdir(self, path, fh):
        self.fault("readdir", path)
        names = sorted(os.listdir(self.real(path)))
        prefix = path.rstrip("/") + "/"
        # With each entry's type, as NFS and SMB give it: a listing then needs no stat per entry.
        return [".", ".."] + [
            (name, {"st_mode": os.lstat(os.path.join(self.real(path), name)).st_mode}, 0)
            for name in names
            if not self.vanished(prefix + name)
        ]

    def readlink(self, path):
        self.fault("readlink", path)
        return os.readlink(self.real(path))

    def open(self, path, flags):
        self.fault("open", path)
        return os.open(self.real(path), flags & ~(os.O_CREAT | os.O_TRUNC))

    def read(self, path, size, offset, fh):
        self.fault("read", path)
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        st = os.statvfs(self.real(path))
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def command(self, message):
        cmd = message.get("cmd")
        if cmd == "ping":
            return {"ok": True}
        if cmd == "rule":
            rule = {k: message[k] for k in ("op", "path", "action", "ms", "exclude_pid", "only_pid") if k in message}
            rule.setdefault("op", "*")
            with self._mutex:
                self.rules.append(rule)
            return {"ok": True}
        if cmd == "hung":
            with self._mutex:
                return {"ok": True, "hung": list(self.hanging.values())}
        if cmd == "clear":
            with self._mutex:
                self.rules = []
                release, self._released = self._released, threading.Event()
            release.set()
            return {"ok": True}
        if cmd == "calls":
            op, under = message.get("op", "*"), message.get("under", "/").rstrip("/")
            with self._mutex:
                count = sum(
                    n
                    for (call_op, call_path), n in self.calls.items()
                    if op in (call_op, "*") and (call_path == (under or "/") or call_path.startswith(under + "/"))
                )
            return {"ok": True, "count": count}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


def serve_control(fs, path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=answer, args=(fs, conn), daemon=True).start()


def answer(fs, conn):
    with conn, conn.makefile("rw") as stream:
        for line in stream:
            try:
                reply = fs.command(json.loads(line))
            except Exception as error:  # noqa: BLE001 - any bad command is answered, not fatal
                reply = {"ok": False, "error": str(error)}
            stream.write(json.dumps(reply) + "\n")
            stream.flush()


def main():
    source, mountpoint, control = sys.argv[1:4]
    fs = FaultFs(os.path.abspath(source))
    threading.Thread(target=serve_control, args=(fs, control), daemon=True).start()
    # No caching in the kernel: every stat, lookup and read reaches the rules.
    fusepy.FUSE(
        fs,
        mountpoint,
        foreground=True,
        nothreads=False,
        direct_io=True,
        entry_timeout=0,
        attr_timeout=0,
        negative_timeout=0,
        fsname="faultfs",
    )


if __name__ == "__main__":
    main()
