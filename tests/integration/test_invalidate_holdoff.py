"""What cachet-invalidate writes on the wire, seen by small fake servers that record every line:
- a pool with holdoff_s sends `delete <key> <seconds>` (cachetd's hold-off form), several
  deletes per packet;
- stock memcached 1.6 refuses that form (CLIENT_ERROR): the daemon says so once and sends it
  plain deletes, and the keys are gone from memcached;
- a destination that answers garbage is marked down with the answer in its error, its deletes
  go to its spool, the other pools are served;
- deletes spooled while a server is down reach it in commit order when it comes up.
"""

import socket
import threading

import harness
import invalidate_common as ic
import pg


class FakeServer:
    """A memcache-ish server on a loopback port: records request lines; `reply(line)` gives the
    answer ("" for none)."""

    def __init__(self, reply, port=None, listen=True):
        self.reply = reply
        self.lines = []
        self.packets = 0  # reads that brought delete lines
        self.lock = threading.Lock()
        self.port = port or harness.free_port()
        self.sock = None
        self.stopping = False
        if listen:
            self.listen()

    def listen(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((harness.LOOPBACK, self.port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        conn.settimeout(0.2)
        while not self.stopping:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            out = b""
            with self.lock:
                if b"delete " in chunk:
                    self.packets += 1
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    line = line.decode()
                    self.lines.append(line)
                    out += self.reply(line).encode()
            if out:
                conn.sendall(out)
        conn.close()

    def deletes(self):
        with self.lock:
            return [x for x in self.lines if x.startswith("delete ")]

    def stop(self):
        self.stopping = True
        if self.sock:
            self.sock.close()


def memcache_reply(line):
    if line == "version":
        return "VERSION fake-1.0\r\n"
    if line.startswith("delete "):
        return "DELETED\r\n"
    return "ERROR\r\n"


def garbage_reply(line):
    return "HTTP/1.0 400 Bad Request\r\n"


def emit(db, messages):
    c = db.connect(autocommit=False)
    with c.cursor() as cur:
        for m in messages:
            cur.execute("SELECT pg_logical_emit_message(true, 'cachet', %s)", (m,))
            c.commit()  # one transaction each
    c.close()


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__)
    t = harness.Checker("invalidate_holdoff", args.verbose)
    hold = FakeServer(memcache_reply)
    junk = FakeServer(garbage_reply)
    late = FakeServer(memcache_reply, listen=False)  # down until the replay part
    fakes = [hold, junk, late]
    try:
        with pg.Postgres() as db, harness.Server(args.reference) as mc:
            body = (ic.pool_toml("hold", ["127.0.0.1:%d" % hold.port], holdoff_s=30) +
                    ic.pool_toml("memcached", [ic.server_spec(mc)], holdoff_s=30) +
                    ic.pool_toml("junk", ["127.0.0.1:%d" % junk.port]) +
                    ic.pool_toml("late", ["127.0.0.1:%d" % late.port]))
            with ic.Invalidate(args.invalidate, db, body,
                              extra_sections="[batch]\ndelay_us = 20000\n") as d:
                keys = ["h:%d" % i for i in range(40)]
                ic.fill(mc, keys)
                t.begin("hold-off form")
                emit(db, [" ".join(keys)])
                ic.wait_until(lambda: len(hold.deletes()) >= len(keys), "the fake got the deletes")
                t.eq(sorted(hold.deletes()), sorted("delete %s 30" % k for k in keys),
                     "`delete <key> 30` for every key")
                t.check(hold.packets < len(keys), "several deletes per packet (%d packets for %d)"
                        % (hold.packets, len(keys)))

                t.begin("memcached refuses the hold-off form")
                ic.wait_until(lambda: not ic.present(mc, keys), "memcached lost the keys")
                t.eq(sorted(ic.present(mc, keys)), [], "memcached holds none of the keys")
                t.eq(d.metric("cachet_invalidate_holdoff_refused_total", pool="memcached",
                              server="%s:%d" % (harness.LOOPBACK, mc.port)), 1.0,
                     "the refusal is counted once")
                t.check(ic.log_has(d, r"refuses `delete <key> 30`.*plain deletes"),
                        "the log says memcached gets plain deletes")

                t.begin("a destination that answers garbage")
                addr = "127.0.0.1:%d" % junk.port
                srv = ic.wait_until(lambda: (lambda s: s if s["spool_deletes"] >= len(keys)
                                             else None)(d.server("junk", addr)),
                                    "junk's deletes spooled")
                t.check(srv["state"] != "up", "the junk server is not up (%s)" % srv["state"])
                t.check("HTTP/1.0 400 Bad Request" in d.log(),
                        "the log quotes the garbage answer")
                t.check(srv["last_error"], "status names its error: %s" % srv["last_error"])

                t.begin("replay in commit order")
                order = ["o:%d" % i for i in range(30)]
                emit(db, order)
                late_addr = "127.0.0.1:%d" % late.port
                ic.wait_until(lambda: d.server("late", late_addr)["spool_deletes"] >=
                              len(keys) + len(order), "late's deletes spooled")
                late.listen()
                ic.wait_until(lambda: len(late.deletes()) >= len(keys) + len(order),
                              "late received its spool")
                got = [x.split()[1] for x in late.deletes()]
                t.eq(sorted(got[:len(keys)]), sorted(keys), "the first transaction first")
                t.eq(got[len(keys):], order, "then the others, in commit order")
                ic.wait_until(lambda: d.server("late", late_addr)["spool_deletes"] == 0,
                              "late's spool drained")
                t.check(True, "late's spool drained")
    finally:
        for f in fakes:
            f.stop()
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
