"""Crash supervision with a real cachet-control and cachetd: `kill -9` of the cachetd child
(by pid) is noticed and cachetd restarted on the same named arena, so items survive; crashes in
a row back off; and a crash in the middle of a write load never makes the restarted cachetd serve
a wrong value (content check of every acknowledged write), keeping at least 99% of them.

    /usr/bin/python3 tests/integration/test_control_crash.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl
"""

import os
import signal
import threading
import time

from pymemcache.client.base import Client

import harness
import test_control_common as tc


def value_for(i):
    """Deterministic value of key i: 10 bytes to 1 KB, content tied to i (small enough that
    the 64 MB cache evicts nothing in this test)."""
    unit = b"%d|" % i
    return (unit * (1 + (i * 7919) % 500))[: 10 + (i * 104729) % 1000]


def client(c):
    return Client(("127.0.0.1", c.port), connect_timeout=2, timeout=5)


def section_items_survive(t, c):
    t.begin("kill -9 keeps items")
    mc = client(c)
    for i in range(2000):
        mc.set("keep:%d" % i, value_for(i))
    pid = c.dataplane_pid()
    os.kill(pid, signal.SIGKILL)
    new_pid = c.wait_running(not_pid=pid)
    t.check(new_pid != pid, "cachetd restarted with a new pid", "%s -> %s" % (pid, new_pid))
    st = c.status()["dataplane"]
    t.eq(st["restarts"], 1, "one restart counted")
    t.check("killed by signal 9" in st.get("last_exit", ""), "status says why",
            st.get("last_exit", ""))
    t.check("restarting in" in c.log(), "control logs the restart and its delay", c.log()[-800:])
    mc = client(c)
    got = mc.get_many(["keep:%d" % i for i in range(2000)])
    missing = [i for i in range(2000) if got.get("keep:%d" % i) != value_for(i)]
    t.eq(len(missing), 0, "all 2000 items there and byte-exact after the restart")


def section_backoff(t, c):
    t.begin("crashes in a row back off")
    for n in (2, 3):
        pid = c.wait_running()
        os.kill(pid, signal.SIGKILL)
        c.wait_running(not_pid=pid)
        t.check("crash %d in a row" % n in c.log(), "crash %d counted in a row" % n,
                c.log()[-600:])
    t.check("restarting in 100 ms" in c.log() and "restarting in 200 ms" in c.log(),
            "delays double (50, 100, 200 ms)", c.log()[-1200:])


def section_crash_under_writes(t, c):
    t.begin("kill -9 under write load")
    acked = []
    errors = []
    stop = threading.Event()

    def writer():
        mc = client(c)
        i = 0
        while not stop.is_set() and i < 2_000_000:
            try:
                if mc.set("w:%d" % i, value_for(i), noreply=False):
                    acked.append(i)
            except Exception as e:  # the crash ends the write load
                errors.append(repr(e))
                return
            i += 1

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while len(acked) < 20000 and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.01)
    pid = c.dataplane_pid()
    os.kill(pid, signal.SIGKILL)
    th.join(timeout=15)
    stop.set()
    t.check(len(acked) >= 20000, "writer had 20000 acknowledged writes before the crash",
            "only %d" % len(acked))
    c.wait_running(not_pid=pid)
    mc = client(c)
    present = wrong = 0
    for start in range(0, len(acked), 200):
        keys = ["w:%d" % i for i in acked[start:start + 200]]
        got = mc.get_many(keys)
        for k in keys:
            v = got.get(k)
            if v is None:
                continue
            if v == value_for(int(k[2:])):
                present += 1
            else:
                wrong += 1
    rate = 100.0 * present / max(1, len(acked))
    print("crash survival: %d of %d acknowledged writes kept (%.3f%%), %d wrong values"
          % (present, len(acked), rate, wrong), flush=True)
    evictions = int(mc.stats().get(b"evictions", 0))
    t.eq(evictions, 0, "no evictions (a loss below is the crash's, not memory pressure's)")
    t.eq(wrong, 0, "no served value differs from what was written")
    t.check(rate >= 99.0, "at least 99%% of acknowledged writes kept (%.3f%%)" % rate)


def main():
    a = tc.parse_args(__doc__)
    t = harness.Checker("control_crash", a.verbose)
    with tc.Control(a, config="[supervisor]\nstable_after_s = 3600\n") as c:
        for s in (section_items_survive, section_backoff, section_crash_under_writes):
            t.run_section(s, t, c)
        if t.failures:
            print("control log:\n" + c.log())
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 150)
