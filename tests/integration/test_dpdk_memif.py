"""cachetd's DPDK dataplane driven by the project's load generator over net_memif (no PCI device,
no network namespace, no kernel interface: two processes joined by a memif socket in a private
temporary directory). cachetd is the memif server on lcore 0, cachet-load (DPDK transport) the
client on lcore 1. cachet-load resolves cachetd's MAC with ARP, preloads every key, then
exchanges a bounded number of requests and validates every reply (framing, keys, lengths,
value bytes; a lost datagram is an error over memif), and compares its counts with cachetd's
own `stats` (fetched over UDP around the measured window). Three runs, each against a fresh
cachetd: 20000 mixed get/set, 20000 mixed 10-key multiget/set, and 2000 multigets of 1000-byte
values whose replies span several datagrams. Runs with --no-huge, or with hugepages (--huge).

    tests/integration/test_dpdk_memif.py build/dataplane/daemon/cachetd \
        --loadgen build/perf/cachet-load [--huge] [-v]
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import harness
import hugepages

CACHET_IP = "10.213.0.2"
LOADGEN_IP = "10.213.0.1"
UDP_PORT = 11411

# name, cachet-load arguments, measured requests, keys per get
RUNS = [
    ("get-set", ["--get-ratio", "0.8", "--multiget", "1", "--value-size", "32"], 20000, 1),
    ("multiget-set", ["--get-ratio", "0.8", "--multiget", "10", "--value-size", "100"], 20000, 10),
    ("multiget-large", ["--get-ratio", "0.9", "--multiget", "8", "--value-size", "1000"], 2000, 8),
]


def check_run(t, name, rc, out, err, res, n, keys_per_get):
    t.begin("memif %s" % name)
    tail = (out + err)[-2500:]
    if not t.check(rc == 0, "cachet-load exit status 0", "exit %s\n%s" % (rc, tail)):
        if res is None:
            return
    if not t.check(res is not None, "cachet-load wrote its JSON result", tail):
        return
    r, d = res["result"], res.get("dpdk", {})
    t.check(d.get("arp_resolved") is True, "cachetd answered the generator's ARP request",
            json.dumps(d))
    t.check(d.get("driver") == "net_memif", "generator ran on net_memif", json.dumps(d))
    t.check(res["preload"]["complete"] and res["preload"]["sets"] == res["config"]["keys"],
            "preload stored every key", json.dumps(res["preload"]))
    t.eq(r["requests"], n, "every measured request answered")
    for k in ("errors", "protocol_errors", "server_errors", "value_errors", "conn_errors",
              "frame_errors", "timeouts"):
        t.eq(r[k], 0, k)
    t.eq(r["gets"] + r["sets"], n, "gets + sets = requests")
    t.check(r["gets"] > 0 and r["sets"] > 0, "both gets and sets ran",
            "gets %d sets %d" % (r["gets"], r["sets"]))
    t.eq(r["get_keys"], r["gets"] * keys_per_get, "keys asked")
    t.eq(r["hits"], r["get_keys"], "every key hit after the preload")
    t.eq(r["misses"], 0, "no misses")
    t.check(res["ok"] is True, "generator status ok", r.get("first_error", ""))
    # The server's own counters over the measured window: `stats` over UDP before the first
    # measured request and after the last answer (the closing `stats` counts itself).
    s = res.get("server_stats", {})
    t.eq(s.get("dpdk:lcore0:requests"), n + 1, "cachetd's lcore 0 counted the same requests")
    t.eq(s.get("dpdk:lcore0:replies", 0) >= n, True, "cachetd sent a reply datagram for each")
    t.eq(s.get("get_hits"), r["hits"], "cachetd's get_hits match the generator's hits")
    t.eq(s.get("cmd_set"), r["sets"], "cachetd's cmd_set match the generator's sets")
    drops = {k: v for k, v in res.get("server_stats_end", {}).items()
             if ":drop_" in k or (k.endswith(":tx_dropped") and v > 1)}
    t.eq(drops, {}, "cachetd dropped nothing (the gratuitous ARP before link-up aside)")


class Generator:
    """cachet-load with --dpdk-linger, its output read by a thread: after its run it keeps the
    memif port open until cachetd has stopped (see below), then exits by itself."""

    LINGER = "cachet-load: lingering"

    def __init__(self, cmd):
        self.lines, self.lingering = [], threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=harness._die_with_parent)
        harness._live_procs[self.proc.pid] = self.proc
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith(self.LINGER):
                self.lingering.set()
        self.lingering.set()  # it exited (early, on a failure)

    def finish(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        harness.stop_pid(self.proc, term_timeout=2.0)
        self.reader.join(5)
        return rc, "".join(self.lines)


def kill_now(proc):
    """SIGKILL by pid (every thread stops at once, no teardown code runs) and reap."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(10)


def run_one(t, args, mem, tag, tmp, i, run, extra, n, kpg):
    """A fresh cachetd and one generator run against it.

    Teardown order matters because of two races in DPDK 22.11's memif PMD (perf/README.md,
    "memif teardown"): (1) when the peer disconnects, the server's interrupt thread unmaps the
    shared regions while its lcore may be inside rte_eth_rx_burst on them (SIGSEGV in
    librte_net_memif, about one disconnect in ten here); (2) closing a memif server port frees
    its listener's interrupt handle while the EAL interrupt thread still uses it (SIGSEGV in
    rte_intr_fd_get, about one SIGTERM in ten with a peer attached). So the generator lingers
    with its port open after its run, cachetd is killed (SIGKILL: no teardown code runs), and
    the generator, whose lcores are idle by then, sees the link go down and exits by itself."""
    sock = os.path.join(tmp, "memif-%s.sock" % run)
    log = os.path.join(tmp, "cachetd-%s.log" % run)
    eal = ("-l 0 --no-pci %s --file-prefix cachet-ms%s "
           "--vdev=net_memif0,role=server,socket=%s,socket-abstract=no" % (mem, tag, sock))
    cmd = [args.server, "--driver", "dpdk", "--dpdk-args", eal, "--dpdk-ip", CACHET_IP + "/24",
           "-U", str(UDP_PORT), "-p", "0", "-m", "64", "-v"]
    tail = lambda: open(log, errors="replace").read()[-3000:]
    proc = harness.spawn(cmd, log)
    gen = None
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        t.begin("memif %s" % run)
        if not t.check(os.path.exists(sock), "cachetd created memif socket %s" % sock, tail()):
            return False
        out_json = os.path.join(tmp, "%s.json" % run)
        gen_eal = ("-l 1 --no-pci %s --file-prefix cachet-mg%s --log-level=warning "
                   "--vdev=net_memif0,role=client,socket=%s,socket-abstract=no" % (mem, tag, sock))
        gen = Generator([args.loadgen, "--dpdk-args", gen_eal, "--dpdk-ip", LOADGEN_IP + "/24",
                         "--dpdk-peer", CACHET_IP, "--port", str(UDP_PORT), "--keys", "5000",
                         "--conns", "4", "--pipeline", "16", "--preload", "--preload-timeout",
                         "30", "--max-requests", str(n), "--duration", "40", "--udp-timeout", "1",
                         "--seed", str(i + 1), "--server-stats", "--dpdk-linger", "20",
                         "--json", out_json] + extra)
        gen.lingering.wait(75)
        alive = proc.poll() is None
        kill_now(proc)
        rc, out = gen.finish(25)
        gen = None
        res = None
        if os.path.exists(out_json):
            with open(out_json) as f:
                res = json.load(f)
        check_run(t, run, rc, out, "", res, n, kpg)
        t.check(alive, "cachetd still running at the end of the run", tail())
        if args.verbose:
            print(out, flush=True)
        return True
    finally:
        harness.stop_pid(proc)
        if gen is not None:
            gen.finish(5)
        for prefix in ("cachet-ms", "cachet-mg"):  # EAL runtime dirs of the two processes
            shutil.rmtree("/var/run/dpdk/%s%s" % (prefix, tag), ignore_errors=True)


def main():
    args = harness.parse_args(__doc__, lambda p: (
        p.add_argument("loadgen_pos", nargs="?", metavar="LOADGEN",
                       help="cachet-load built with the DPDK transport"),
        p.add_argument("--loadgen", help="cachet-load (same as LOADGEN)"),
        p.add_argument("--huge", action="store_true", help="use hugepages (reserve them)")))
    name = "dpdk_memif%s" % ("_huge" if args.huge else "")
    t = harness.Checker(name, args.verbose)
    args.loadgen = args.loadgen or args.loadgen_pos
    if harness.is_memcached(args.server):
        print("SKIP: needs cachetd (memcached has no DPDK driver)")
        return 77
    if os.geteuid() != 0:
        print("SKIP: DPDK's runtime directory /var/run/dpdk needs root")
        return 77
    if not args.loadgen or not os.access(args.loadgen, os.X_OK):
        t.fail("cachet-load given and executable", repr(args.loadgen))
        return t.finish()
    if os.cpu_count() < 2:
        print("SKIP: needs two CPUs (cachetd on lcore 0, the generator on lcore 1)")
        return 77
    mem = "--no-huge -m 512"
    if args.huge:
        huge_dir = hugepages.reserve(600)  # 2 x 512 MB for the two EAL instances, some slack
        if not huge_dir:
            print("SKIP: no hugepages could be reserved")
            return 77
        mem = "--huge-dir %s -m 512" % huge_dir
    tag = "%d" % (os.getpid() % 100000)
    tmp = tempfile.mkdtemp(prefix="cachet-memif-")
    try:
        for i, (run, extra, n, kpg) in enumerate(RUNS):
            if not run_one(t, args, mem, tag, tmp, i, run, extra, n, kpg):
                break
    finally:
        if args.huge:
            hugepages.release()
        if not t.failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in %s" % tmp, flush=True)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=170)
