"""Chaos during upgrades and crashes, real cachet-control and real cachetd: under write load,
`cachetctl upgrade` runs and one process is killed with SIGKILL at a point of the upgrade chosen
by state plus a seeded random delay: the old cachetd, the new one or cachet-control itself, each
early (the new cachetd's pid has just appeared), in the middle (the old one just got the
hand-over request) and late (the new one serves, the old one has not exited yet). After each
round: the appliance serves again (control restarts a killed cachetd; a killed cachet-control is
started again by the test, as an init system would, and must find nothing in its way), exactly
one cachetd of this instance runs, no acknowledged write is served with a wrong value and at
least 99% of them are kept. At the end a plain upgrade, a restart, a stop and a fresh start on
the same arena and socket still work and the cache is still there.

The seed is printed; `--seed N` replays a run's choices (kill order, points and delays; the
machine's timing still varies). `--rounds N` repeats the victim x point table.

    /usr/bin/python3 tests/integration/test_control_chaos.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl [--seed N]
"""

import os
import random
import re
import signal
import socket
import threading
import time
import traceback

import harness
import test_control_common as tc

VICTIMS = ("old", "new", "control")
# point -> (state that triggers the kill, random delay bound in ms after it)
POINTS = {
    "early": ("the new cachetd's pid appeared", 40.0),
    "middle": ("the old cachetd got the hand-over request", 6.0),
    "late": ("the new cachetd serves, the old one is held before its exit", 15.0),
}
KEYS_PER_WRITER = 400
ACKS_BEFORE = 300        # acknowledged writes per writer before the upgrade starts
ACKS_AFTER = 200         # ... and after the kill, before the round ends
REPLY_TIMEOUT = 30.0     # a reply held across a hand-over is slow, not lost
STATE_TIMEOUT = 90.0     # every wait for a state: generous, never what decides pass/fail


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Processes of this instance


def proc_state(pid):
    """The state letter of pid ('R', 'S', 'Z', ...), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    s = proc_state(pid)
    return s is not None and s not in ("Z", "X")


def instance_procs(binary, marker):
    """Pids of live processes running `binary` whose command line names `marker` (the test's
    private directory: every cachetd of this instance has its admin socket there). Counted,
    never killed by this list."""
    real = os.path.realpath(binary)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0]:
            continue
        exe = os.path.realpath(argv[0].decode("utf-8", "replace"))
        if exe == real and any(marker.encode() in a for a in argv) and alive(int(d)):
            out.append(int(d))
    return sorted(out)


def wait_for(cond, timeout=STATE_TIMEOUT, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def takeover_connected(path):
    """True once a successor has connected to the takeover socket at `path` (the kernel's
    list of unix sockets shows a connected socket bound to it): the hand-over request."""
    try:
        with open("/proc/net/unix") as f:
            for ln in f:
                parts = ln.split()
                if len(parts) >= 8 and parts[7] == path and parts[5] == "03":
                    return True
    except OSError:
        pass
    return False


def arena_inode(arena):
    for d in ("/dev/hugepages", "/dev/shm"):
        try:
            return os.stat(os.path.join(d, arena)).st_ino
        except OSError:
            pass
    return None


def holds_flock(pid, inode):
    """True when pid holds the flock on the file with that inode (the arena: it attached it,
    so the old cachetd has released it)."""
    try:
        with open("/proc/locks") as f:
            for ln in f:
                parts = ln.split()
                if (len(parts) >= 6 and parts[1] == "FLOCK" and parts[4] == str(pid) and
                        parts[5].rsplit(":", 1)[-1] == str(inode)):
                    return True
    except OSError:
        pass
    return False


def poll_state(cond, give_up, timeout=STATE_TIMEOUT):
    """Polls cond() every 0.2 ms (the upgrade's states last milliseconds) until it
    is true, give_up() is true or the timeout passes; returns cond()'s last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if give_up():
            break
        time.sleep(0.0002)
    return cond()


def serves(port):
    try:
        with harness.Conn(port, timeout=5) as conn:
            return conn.request(b"version\r\n").startswith(b"VERSION ")
    except (OSError, harness.Closed):
        return False


# --------------------------------------------------------------------------------------------
# The control log, read as it grows: the states the kills wait for


class LogWatch:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            self.offset = f.tell()
        self.partial = b""
        self.lines = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        data = self.partial + data
        *full, self.partial = data.split(b"\n")
        self.lines += [ln.decode("utf-8", "replace") for ln in full]

    def search(self, regex):
        rx = re.compile(regex)
        for ln in self.lines:
            m = rx.search(ln)
            if m:
                return m
        return None

    def wait(self, regex, timeout=STATE_TIMEOUT, give_up=None):
        """The first match of regex in lines logged since the watch began; None on timeout or
        once give_up() is true (checked after the log, so a last line is never missed)."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            m = self.search(regex)
            if m or time.monotonic() > deadline:
                return m
            if give_up and give_up():
                self.poll()
                return self.search(regex)
            time.sleep(0.001)


# --------------------------------------------------------------------------------------------
# Write load: every acknowledged write recorded


class Writer:
    """Sets keys of its own (KEYS_PER_WRITER of them, each overwritten many times) with values
    unique per write, until stopped. A write answered STORED is acknowledged: acked[key] is its
    value. A write whose reply never came (the connection died or timed out) may or may not have
    been applied: unknown[key] is its value and the key is not written again, so for every key
    the acceptable values are exactly its last acknowledged value and that one unknown value,
    which was sent after it. `short`: a new connection every 10 writes (accepts during the
    hand-over), else one connection re-made only when it fails."""

    def __init__(self, port, prefix, tid, seed, short):
        self.port, self.tid, self.short = port, tid, short
        self.keys = [b"%s:w%d:%d" % (prefix, tid, i) for i in range(KEYS_PER_WRITER)]
        self.rng = random.Random(seed * 1000 + tid)
        self.acked = {}
        self.unknown = {}
        self.acks = 0
        self.sent = 0
        self.odd = []           # replies other than STORED (not failures by themselves)
        self.refused = 0
        self.conn_lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def value(self, key, seq):
        unit = b"%s#%d|" % (key, seq)
        return unit * (1 + self.rng.randrange(6))

    def run(self):
        live = list(self.keys)
        conn = None
        seq = 0
        while not self.stop.is_set() and live:
            if conn is None:
                try:
                    conn = harness.Conn(self.port, timeout=REPLY_TIMEOUT)
                except OSError:
                    self.refused += 1
                    self.stop.wait(0.005)
                    continue
                per_conn = 0
            key = self.rng.choice(live)
            val = self.value(key, seq)
            seq += 1
            self.sent += 1
            try:
                r = conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val),
                                 timeout=REPLY_TIMEOUT)
            except (OSError, harness.Closed):
                r = None
            if r == b"STORED\r\n":
                self.acked[key] = val
                self.acks += 1
                per_conn += 1
                if self.short and per_conn >= 10:
                    conn.close()
                    conn = None
                continue
            # No acknowledgement: the outcome is unknown; the key is retired.
            if r is not None:
                self.odd.append(r)
            else:
                self.conn_lost += 1
            self.unknown[key] = val
            live.remove(key)
            conn.close()
            conn = None
        if conn:
            conn.close()

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=REPLY_TIMEOUT + 10)
        return not self.thread.is_alive()


def wait_acks(writers, more, base=None, timeout=STATE_TIMEOUT):
    base = base or [0] * len(writers)
    return wait_for(lambda: all(w.acks >= b + more for w, b in zip(writers, base)), timeout)


def read_back(port, writers):
    """{'keys', 'kept', 'missing', 'wrong' (list of details), 'unknown_seen'} over every key
    of `writers`: acknowledged keys must read back as their acknowledged value or their later
    unknown one; keys never acknowledged may only read back as their unknown value."""
    expect = {}
    for w in writers:
        for k in w.keys:
            ok = set()
            if k in w.acked:
                ok.add(w.acked[k])
            if k in w.unknown:
                ok.add(w.unknown[k])
            if ok:
                expect[k] = (k in w.acked, ok)
    res = {"keys": 0, "kept": 0, "missing": 0, "wrong": [], "unknown_seen": 0}
    keys = sorted(expect)
    with harness.Conn(port, timeout=30) as conn:
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            conn.send(b"get " + b" ".join(chunk) + b"\r\n")
            got = harness.parse_values(conn.read_retrieval(timeout=30))
            for k in chunk:
                was_acked, ok = expect[k]
                v = got.get(k)
                if was_acked:
                    res["keys"] += 1
                if v is None:
                    res["missing"] += was_acked
                    continue
                if v[1] not in ok:
                    res["wrong"].append("%s -> %s (acceptable: %s)"
                                        % (k.decode(), harness.show(v[1], 60),
                                           [harness.show(x, 60) for x in ok]))
                    continue
                if was_acked:
                    res["kept"] += 1
                res["unknown_seen"] += any(k in w.unknown and v[1] == w.unknown[k]
                                           for w in writers)
    return res


# --------------------------------------------------------------------------------------------
# One round


class Round:
    def __init__(self, n, victim, point, delay_ms):
        self.n, self.victim, self.point, self.delay_ms = n, victim, point, delay_ms

    def name(self):
        return "round %d: %s at %s (+%.1f ms)" % (self.n, self.victim, self.point, self.delay_ms)


def kill(pid):
    """SIGKILL by pid; True if the process was still there to be killed."""
    if not alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def resume(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def run_round(t, a, c, rd, seed, all_writers):
    t.begin(rd.name())
    old = c.wait_running(timeout=STATE_TIMEOUT)
    old_admin = c.status()["dataplane"]["admin"]
    inode = arena_inode(c.arena)
    restarts_before = c.status()["dataplane"].get("restarts", 0)
    prefix = b"r%d" % rd.n
    writers = [Writer(c.port, prefix, i, seed + rd.n, short=(i == 1)) for i in range(2)]
    all_writers.extend(writers)
    held = None
    upgrade = None
    try:
        t.check(wait_acks(writers, ACKS_BEFORE), "the writers ran before the upgrade",
                str([w.acks for w in writers]))
        watch = LogWatch(c.log_path)
        upgrade_log = os.path.join(c.dir, "upgrade-%d.log" % rd.n)
        upgrade = harness.spawn([a.ctl, "--socket", c.socket, "upgrade"], upgrade_log)
        upgrade_done = lambda: upgrade.poll() is not None  # noqa: E731
        m = watch.wait(r"upgrade: started new cachetd pid (\d+)", give_up=upgrade_done)
        if not t.check(m, "control started a new cachetd", harness.tail(upgrade_log)):
            return
        new = int(m.group(1))
        pids = {"old": old, "new": new, "control": c.proc.pid}
        if rd.point == "middle":
            # The kernel's view, not a log line (cachetd's output reaches the control log
            # only when control drains it): a connection on the old one's takeover socket.
            # Should the whole hand-over fall between two looks, the kill lands later: the
            # round still checks everything, so that is said, not failed.
            if not poll_state(lambda: takeover_connected(old_admin + ".takeover"),
                              upgrade_done):
                log("%s: the hand-over request was not seen (the upgrade was faster than the "
                    "poll); the kill lands after it" % rd.name())
        elif rd.point == "late":
            # Hold the old cachetd (SIGSTOP) from the moment it released the arena (the new one
            # holds the arena's flock) until the kill, so that the kill lands while the new one
            # serves and the old one has not exited yet, as on a slow machine.
            if t.check(poll_state(lambda: holds_flock(new, inode), upgrade_done),
                       "the new cachetd attached the arena"):
                if alive(old):
                    os.kill(old, signal.SIGSTOP)
                    held = old
            m = watch.wait(r"upgrade: new cachetd pid %d .*serving after" % new,
                           give_up=upgrade_done)
            t.check(m, "control saw the new cachetd serve", "\n".join(watch.lines[-20:]))
        time.sleep(rd.delay_ms / 1000.0)
        acks_at_kill = [w.acks for w in writers]
        victim = pids[rd.victim]
        was_alive = kill(victim)
        note = "" if was_alive else " (already gone)"
        if held:
            resume(held)
            held = None
            note += "; the old one was held before its exit"
        elif rd.point == "late":
            note += "; the old one had exited already"
        log("%s: SIGKILL to %s pid %d%s"
            % (rd.name(), "cachet-control" if rd.victim == "control" else rd.victim + " cachetd",
               victim, note))
        t0 = time.monotonic()

        if rd.victim == "control":
            t.check(c.wait_exit(timeout=30) is not None, "cachet-control died")
            # What an init system does: start it again, at once, with the same configuration.
            # Its first cachetd must start even while the killed one's children are exiting.
            harness.stop_pid(c.proc)
            c.start(timeout=STATE_TIMEOUT)
        t.check(c.alive(), "cachet-control runs", c.log())
        pid = None
        try:
            pid = c.wait_running(timeout=STATE_TIMEOUT)
        except RuntimeError as e:
            t.fail("cachetd runs again", str(e))
        t.check(wait_for(lambda: serves(c.port)), "the appliance serves again")
        recovered = time.monotonic() - t0
        t.check(wait_acks(writers, ACKS_AFTER, acks_at_kill),
                "the writers went on after the kill",
                "at the kill %s, now %s" % (acks_at_kill, [w.acks for w in writers]))
        rc = None
        try:
            rc = upgrade.wait(timeout=STATE_TIMEOUT)
        except Exception:  # noqa: BLE001 - reported below
            pass
        t.check(rc is not None, "cachetctl upgrade returned", harness.tail(upgrade_log))
        harness.stop_pid(upgrade)
        upgrade = None
        for w in writers:
            t.check(w.finish(), "writer %d stopped" % w.tid)
        # Exactly one cachetd of this instance: the current one; every other one exited.
        wait_for(lambda: len(instance_procs(a.server, c.dir)) == 1)
        t.eq(instance_procs(a.server, c.dir), [c.dataplane_pid()],
             "exactly one cachetd runs, the one control names")
        t.eq(len(instance_procs(a.control, c.socket)), 1, "exactly one cachet-control runs")
        st = c.status()["dataplane"]
        # No socket is left behind: control's directory holds its own socket, the link and the
        # current cachetd's admin and takeover sockets, nothing of the killed processes.
        admin = os.path.basename(st.get("admin", ""))
        want = sorted(["control.sock", "control.sock.cachetd", admin, admin + ".takeover"])
        t.check(wait_for(lambda: stray_files(c) == want), "no stale socket left",
                "expected %s\n  actual %s" % (want, stray_files(c)))
        if rd.victim == "control":
            watch.poll()
            waited = watch.search(r"of an earlier cachet-control .* still running")
            log("%s: the restarted cachet-control %s" % (rd.name(), "waited for the killed one's "
                "cachetd to exit" if waited else "found no cachetd of the killed one running"))
        res = read_back(c.port, writers)
        kept = 100.0 * res["kept"] / max(1, res["keys"])
        log("%s: upgrade exit %s (%s); recovered in %.2f s; cachetd pid %s, restarts %s -> %s; "
            "writes %d sent, %d acknowledged, %d unknown (%d lost connections, %d refused "
            "connects, %d odd replies)"
            % (rd.name(), rc, harness.tail(upgrade_log, 300).strip().splitlines()[-1:] or "",
               recovered, pid, restarts_before, st.get("restarts"),
               sum(w.sent for w in writers), sum(w.acks for w in writers),
               sum(len(w.unknown) for w in writers), sum(w.conn_lost for w in writers),
               sum(w.refused for w in writers), sum(len(w.odd) for w in writers)))
        log("%s: kept %d of %d acknowledged keys (%.3f%%), %d missing, %d wrong values, "
            "%d unknown writes found applied"
            % (rd.name(), res["kept"], res["keys"], kept, res["missing"], len(res["wrong"]),
               res["unknown_seen"]))
        t.eq(res["wrong"][:5], [], "no acknowledged write served with a wrong value")
        t.check(kept >= 99.0, "at least 99%% of the acknowledged writes kept (%.3f%%)" % kept)
        t.check(res["keys"] >= 100, "enough acknowledged keys to judge (%d)" % res["keys"])
        odd = [r for w in writers for r in w.odd]
        t.eq(odd[:5], [], "no reply other than STORED")
    finally:
        if held:
            resume(held)
        if upgrade is not None:
            harness.stop_pid(upgrade)
        for w in writers:
            w.stop.set()


# --------------------------------------------------------------------------------------------


def section(t, fn, *args):
    """t.run_section, but the watchdog's Timeout ends the test instead of one section."""
    try:
        fn(*args)
    except harness.Timeout:
        raise
    except Exception:  # noqa: BLE001 - reported as a failure
        t.fail("section %s raised" % fn.__name__, traceback.format_exc(limit=4))


def plan_rounds(rng, repeat):
    table = [(v, p) for _ in range(repeat) for v in VICTIMS for p in POINTS]
    rng.shuffle(table)
    return [Round(i + 1, v, p, rng.uniform(0, POINTS[p][1])) for i, (v, p) in enumerate(table)]


def stray_files(c):
    """Sockets and links left in control's directory (the test's own files aside)."""
    return sorted(f for f in os.listdir(c.dir) if f.startswith("control.sock"))


def section_end(t, a, c, writers):
    t.begin("after the chaos")
    rc, out, err = c.ctl("upgrade", timeout=STATE_TIMEOUT)
    t.check(rc == 0, "a plain upgrade works", "exit %s: %s%s" % (rc, out, err))
    rc, out, err = c.ctl("restart", timeout=STATE_TIMEOUT)
    t.check(rc == 0, "a plain restart works", "exit %s: %s%s" % (rc, out, err))
    res = read_back(c.port, writers)
    kept = 100.0 * res["kept"] / max(1, res["keys"])
    log("all rounds: kept %d of %d acknowledged keys (%.3f%%), %d wrong values"
        % (res["kept"], res["keys"], kept, len(res["wrong"])))
    t.eq(res["wrong"][:5], [], "no acknowledged write of any round served with a wrong value")
    t.check(kept >= 99.0, "at least 99%% of every round's acknowledged writes kept (%.3f%%)"
            % kept)
    with harness.Conn(c.port) as conn:
        ev = int(harness.stats(conn).get("evictions", b"0"))
    t.eq(ev, 0, "no evictions (a loss is the chaos's, not memory pressure's)")

    t.begin("stop, then a fresh start on the same arena and socket")
    rc, out, err = c.ctl("stop", timeout=STATE_TIMEOUT)
    t.check(rc == 0, "cachetctl stop works", "exit %s: %s%s" % (rc, out, err))
    t.eq(c.wait_exit(timeout=STATE_TIMEOUT), 0, "cachet-control exited 0")
    harness.stop_pid(c.proc)
    t.check(wait_for(lambda: not instance_procs(a.server, c.dir)), "no cachetd is left running",
            str(instance_procs(a.server, c.dir)))
    t.eq(stray_files(c), [], "no socket or link left in control's directory")
    c.start(timeout=STATE_TIMEOUT)
    t.check(serves(c.port), "a fresh cachet-control serves on the same port")
    res2 = read_back(c.port, writers)
    t.eq((res2["kept"], res2["wrong"][:5]), (res["kept"], []),
         "the fresh start serves the same cache")


def main():
    def extra(p):
        p.add_argument("--seed", type=int, default=None, help="replay a run's random choices")
        p.add_argument("--rounds", type=int, default=1,
                       help="how many times each victim is killed at each point (default 1)")
    a = tc.parse_args(__doc__, extra)
    if not (tc.cachetd_supports(a.server, "--takeover") and
            tc.cachetd_supports(a.server, "--admin-socket")):
        print("SKIP: %s -h lists no --takeover/--admin-socket" % a.server, flush=True)
        return 77
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    log("seed %d (replay with --seed %d)" % (seed, seed))
    rng = random.Random(seed)
    rounds = plan_rounds(rng, max(1, a.rounds))
    t = harness.Checker("control_chaos", a.verbose)
    # verbosity 1: the control log shows each cachetd's hand-over steps (for a failure's
    # diagnosis); backoff: a killed cachetd is restarted after 50 to 400 ms, never after the
    # long tail of the backoff (stable_after_s: crashes of different rounds are not in a row).
    config = ("[dataplane]\nverbosity = 1\n[supervisor]\nbackoff_initial_ms = 50\n"
              "backoff_max_ms = 400\nstable_after_s = 1\n")
    with tc.Control(a, config=config) as c:
        writers = []
        for rd in rounds:
            section(t, run_round, t, a, c, rd, seed, writers)
            if not (c.alive() and serves(c.port)):
                t.fail("the appliance serves after %s; the later rounds are not run" % rd.name())
                break
        else:
            section(t, section_end, t, a, c, writers)
        if t.failures:
            log("seed %d; control log:\n%s" % (seed, c.log(20000)))
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 280)
