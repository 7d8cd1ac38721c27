#!/usr/bin/python3
"""A fake cachetd that follows the upgrade contract cachet-control relies on, so the
orchestration is tested before (and independently of) the real cachetd's side.

    fake_cachetd.py [--layout N] [--no-takeover] [--fail-start] <cachetd flags>

Contract it follows (docs/CONTROL.md, "Upgrade"):
- `-h` lists --admin-socket and --takeover (not with --no-takeover: an old binary).
- The arena (--shm NAME -> /dev/shm/NAME, or a path) records a layout version. An existing arena of
  another layout is refused before anything else: a message on stderr, exit status 3, unless
  --shm-discard, which replaces it.
- --takeover OLD: connect to OLD (the running one's admin socket), send "takeover", receive its
  listening TCP socket over SCM_RIGHTS, serve on it. The old one stops accepting at once,
  finishes its open connections and exits.
- --admin-socket PATH: memcached text protocol (version, stats [settings], verbosity N,
  tunable verbosity N), mode 0600.
Wrapper scripts put the fake-only options first (cachet-control only ever adds cachetd flags).
"""

import os
import selectors
import signal
import socket
import sys
import time

VALUE_FLAGS = {"-p", "-U", "-l", "-t", "-c", "-m", "-I", "-n", "-f", "--driver", "--shm",
               "--admin-socket", "--takeover", "--layout"}


def parse(argv):
    opts = {"-p": "11211", "-v": 0}
    i = 0
    while i < len(argv):
        a = argv[i]
        if "=" in a and a.split("=", 1)[0] in VALUE_FLAGS:
            k, v = a.split("=", 1)
            opts[k] = v
        elif a in VALUE_FLAGS:
            opts[a] = argv[i + 1]
            i += 1
        elif a.startswith("-v") and set(a[1:]) == {"v"}:
            opts["-v"] += len(a) - 1
        elif a in ("--shm-discard", "--no-takeover", "--fail-start", "-h", "--help"):
            opts[a] = True
        else:
            sys.stderr.write("cachetd: unknown option '%s'\n" % a)
            sys.exit(64)
        i += 1
    return opts


def check_arena(opts, layout):
    name = opts.get("--shm")
    if not name:
        return
    path = name if "/" in name else "/dev/shm/" + name
    if os.path.exists(path):
        with open(path) as f:
            have = f.read().strip()
        if have != "FAKE-LAYOUT %d" % layout and not opts.get("--shm-discard"):
            sys.stderr.write("cachetd: arena %s has layout '%s'; this cachetd reads layout %d; "
                             "--shm-discard replaces it\n" % (path, have, layout))
            sys.exit(3)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"FAKE-LAYOUT %d\n" % layout)
    os.close(fd)


class Fake:
    def __init__(self, opts, layout):
        self.opts = opts
        self.version = "fake-layout-%d" % layout
        self.verbosity = opts["-v"]
        self.items = {}
        self.started = time.time()
        self.sel = selectors.DefaultSelector()
        self.draining = False
        self.drain_deadline = None
        self.conns = {}
        self.listener = None
        self.admin = None

    def start(self):
        old = self.opts.get("--takeover")
        if old:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(old)
            s.sendall(b"takeover\r\n")
            msg, fds, _, _ = socket.recv_fds(s, 1024, 4)
            s.close()
            if not msg.startswith(b"TAKEOVER OK") or not fds:
                sys.stderr.write("cachetd: takeover from %s failed: %r\n" % (old, msg))
                sys.exit(1)
            self.listener = socket.socket(fileno=fds[0])
        else:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", int(self.opts["-p"])))
            self.listener.listen(128)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept", False))
        path = self.opts.get("--admin-socket")
        if path:
            if os.path.exists(path):
                os.unlink(path)
            self.admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            self.admin.bind(path)
            os.umask(old_umask)
            self.admin.listen(16)
            self.admin.setblocking(False)
            self.sel.register(self.admin, selectors.EVENT_READ, ("accept", True))
        sys.stderr.write("cachet info: fake cachetd %s pid %d serving\n" % (self.version, os.getpid()))
        sys.stderr.flush()

    def stats(self, group):
        if group == "settings":
            return [("verbosity", self.verbosity), ("tcpport", self.opts["-p"])]
        if group in ("items", "slabs"):
            return []
        return [("pid", os.getpid()), ("uptime", int(time.time() - self.started)),
                ("version", self.version), ("curr_items", len(self.items))]

    def handle(self, conn, is_admin, buf):
        out = b""
        while b"\r\n" in buf:
            line, rest = buf.split(b"\r\n", 1)
            parts = line.decode("latin-1").split()
            cmd = parts[0] if parts else ""
            if cmd == "set" and len(parts) >= 5:
                n = int(parts[4])
                if len(rest) < n + 2:
                    break
                self.items[parts[1]] = rest[:n]
                rest = rest[n + 2:]
                out += b"STORED\r\n"
            elif cmd == "get" and len(parts) == 2:
                v = self.items.get(parts[1])
                if v is not None:
                    out += b"VALUE %s 0 %d\r\n%s\r\n" % (parts[1].encode(), len(v), v)
                out += b"END\r\n"
            elif cmd == "version":
                out += b"VERSION " + self.version.encode() + b"\r\n"
            elif cmd == "stats":
                for k, v in self.stats(parts[1] if len(parts) > 1 else ""):
                    out += b"STAT %s %s\r\n" % (k.encode(), str(v).encode())
                out += b"END\r\n"
            elif cmd == "verbosity" and len(parts) == 2:
                self.verbosity = min(int(parts[1]), 2)
                out += b"OK\r\n"
            elif cmd == "tunable" and is_admin and len(parts) == 3 and parts[1] == "verbosity":
                self.verbosity = int(parts[1 + 1])
                out += b"OK\r\n"
            elif cmd == "takeover" and is_admin:
                socket.send_fds(conn, [b"TAKEOVER OK\r\n"], [self.listener.fileno()])
                self.sel.unregister(self.listener)  # stop accepting: the new one does now
                if self.admin:
                    self.sel.unregister(self.admin)
                self.draining = True
                self.drain_deadline = time.monotonic() + 2.0
            else:
                out += b"ERROR\r\n"
            buf = rest
        if out:
            conn.sendall(out)
        return buf

    def run(self):
        while True:
            if self.draining and (not self.conns or time.monotonic() > self.drain_deadline):
                sys.stderr.write("cachet info: fake cachetd handed over; exiting\n")
                return 0
            for key, _ in self.sel.select(timeout=0.05):
                kind, is_admin = key.data
                if kind == "accept":
                    try:
                        c, _ = key.fileobj.accept()
                    except BlockingIOError:
                        continue
                    c.setblocking(True)
                    c.settimeout(5)
                    self.conns[c] = b""
                    self.sel.register(c, selectors.EVENT_READ, ("conn", is_admin))
                    continue
                c = key.fileobj
                try:
                    data = c.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(c)
                    c.close()
                    del self.conns[c]
                    continue
                self.conns[c] = self.handle(c, is_admin, self.conns[c] + data)


def main():
    argv = sys.argv[1:]
    layout = 1
    if len(argv) >= 2 and argv[0] == "--layout":
        layout = int(argv[1])
        argv = argv[2:]
    opts = parse(argv)
    if opts.get("-h") or opts.get("--help"):
        print("Usage: cachetd [options] (fake)\n  -p, --port=<num>  TCP port")
        if not opts.get("--no-takeover"):
            print("  --admin-socket=<path>  admin socket\n  --takeover=<path>  take over")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    check_arena(opts, layout)
    if opts.get("--fail-start"):
        sys.stderr.write("cachetd: simulated start failure\n")
        return 1
    fake = Fake(opts, layout)
    fake.start()
    return fake.run()


if __name__ == "__main__":
    sys.exit(main())
