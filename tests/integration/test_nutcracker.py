"""nutcracker (twemproxy 0.5.0) in front of instances of the server, with a generated YAML
config on free loopback ports (memcache is selected by "redis: false"; twemproxy has no
"memcache:" directive and rejects the file if one is given); pymemcache talks to the proxy.
Checks that set/get/multiget/delete/incr/decr/add/replace/append/prepend/gets+cas/touch work
through the proxy, that a multiget spanning both servers returns every key, that keys land on
both backends (read back directly), and that large and binary values pass byte-exact. Then
three backends with auto_eject_hosts: every command lands on the backend that ketama names
(ketama.py, read back directly), and with one backend killed the proxy keeps answering for the
keys of the others. nutcracker is stopped by its pid.
"""

import os
import shutil
import socket
import tempfile
import time

import harness
import ketama
from pymemcache.client.base import Client

# md5 + ketama (libmemcached's ketama). With fnv1a_64 + ketama twemproxy 0.5.0 put all 100 test
# keys on one backend.
CONFIG = """cachet:
  listen: {listen}
  hash: {hash}
  distribution: ketama
  timeout: 3000
  redis: false
  auto_eject_hosts: {eject}
  server_failure_limit: 1
  server_retry_timeout: 60000
  preconnect: true
  servers:
{servers}
"""


def start_proxy(backends, workdir, eject=False, hash="md5"):
    """nutcracker with ketama over backends named backend0, backend1, ...; (proc, port)."""
    tool = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
    last = None
    for _ in range(5):
        port = harness.free_port()
        stats_port = harness.free_port()
        conf = os.path.join(workdir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write(CONFIG.format(
                listen="%s:%d" % (harness.LOOPBACK, port), eject=str(eject).lower(), hash=hash,
                servers="\n".join("   - %s:%d:1 backend%d" % (harness.LOOPBACK, b.port, i)
                                  for i, b in enumerate(backends))))
        log = os.path.join(workdir, "nutcracker.log")
        rc, out, err = harness.run_tool([tool, "-t", "-c", conf, "-o", log], timeout_s=10)
        if rc != 0:
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError("nutcracker -t rejected the config: %s %s %s" % (out, err, tail))
        proc = harness.spawn([tool, "-c", conf, "-s", str(stats_port), "-a", harness.LOOPBACK,
                              "-p", os.path.join(workdir, "nutcracker.pid"), "-o", log,
                              "-v", "4"], os.path.join(workdir, "stdout.log"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection((harness.LOOPBACK, port), timeout=0.5) as s:
                    s.settimeout(2)
                    s.sendall(b"get nutcracker-ready-probe\r\n")
                    if s.recv(64).startswith(b"END"):
                        return proc, port
            except OSError:
                pass
            time.sleep(0.05)
        last = "nutcracker did not come up (exit %s): %s" % (proc.poll(), open(log).read()[-2000:]
                                                             if os.path.exists(log) else "")
        harness.stop_pid(proc)
    raise RuntimeError(last)


def three_backends(t, server, workdir):
    """Every command lands where ketama says; one backend gone, the others' keys still answer."""
    backends = [harness.Server(server, name="backend%d" % i) for i in range(3)]
    ring = ketama.Ketama(["backend%d" % i for i in range(3)])
    proxy = None
    try:
        proxy, pport = start_proxy(backends, workdir, eject=True)
        c = Client((harness.LOOPBACK, pport), connect_timeout=5, timeout=5, default_noreply=False)
        direct = [Client((harness.LOOPBACK, b.port), connect_timeout=5, timeout=5)
                  for b in backends]
        keys = [b"k3:%d" % i for i in range(60)]
        owner = {k: ring.owner(k) for k in keys}
        t.begin("three backends: each command lands on the backend ketama names")
        t.check(len(set(owner.values())) == 3, "ketama spreads 60 keys over all three",
                "%r" % sorted(owner.values()))
        for k in keys:
            c.set(k, b"v:" + k, noreply=False)
        placed = sum(1 for k in keys
                     if [d.get(k) for d in direct] ==
                     [b"v:" + k if i == owner[k] else None for i in range(3)])
        t.eq(placed, len(keys), "set: each key on its ketama backend only")
        t.eq(c.get_many(keys), {k: b"v:" + k for k in keys}, "multiget through the proxy")
        n = keys[0]
        c.set(n, b"10", noreply=False)
        t.eq(c.incr(n, 5), 15, "incr through the proxy")
        t.eq(direct[owner[n]].get(n), b"15", "incr landed on the owner")
        v, cas = c.gets(keys[1])
        t.eq(c.cas(keys[1], b"swapped", cas, noreply=False), True, "cas through the proxy")
        t.eq(direct[owner[keys[1]]].get(keys[1]), b"swapped", "cas landed on the owner")
        t.eq(c.delete(keys[2], noreply=False), True, "delete through the proxy")
        t.eq(direct[owner[keys[2]]].get(keys[2]), None, "delete landed on the owner")

        t.begin("one backend killed: the proxy keeps answering for the others' keys")
        dead = owner[keys[3]]
        backends[dead].stop()
        alive_keys = [k for k in keys[3:] if owner[k] != dead]
        # Until it is ejected a request for the dead backend's keys fails; keys of the others
        # must answer all along.
        got = {k: c.get(k) for k in alive_keys}
        t.eq(got, {k: b"v:" + k for k in alive_keys}, "every key of a live backend still hits")
        dead_key = keys[3]

        def remapped():
            try:
                return c.get(dead_key) is None  # ejected: a miss on another backend
            except Exception:  # noqa: BLE001 - the proxy's error until it ejects the host
                return False
        deadline = time.monotonic() + 30
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = remapped()
            if not ok:
                time.sleep(0.2)
        t.check(ok, "the dead backend's keys are ejected to the others (a miss, not an error)")
        t.eq(c.set(dead_key, b"again", noreply=False), True, "and can be stored again")
        t.eq(c.get(dead_key), b"again", "read back")
        t.check(proxy.poll() is None, "nutcracker still running")
        for d in direct:
            d.close()
        c.close()
    finally:
        if proxy:
            harness.stop_pid(proxy)
        for b in backends:
            b.stop()


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("nutcracker_proxy", args.verbose)
    workdir = tempfile.mkdtemp(prefix="cachet-it-nutcracker-")
    try:
        with harness.Server(args.server, name="backend0") as b0, \
                harness.Server(args.server, name="backend1") as b1:
            proxy, pport = start_proxy([b0, b1], workdir)
            try:
                c = Client((harness.LOOPBACK, pport), connect_timeout=5, timeout=5,
                           default_noreply=False)
                t.begin("single-key commands through the proxy")
                t.eq(c.set(b"p:a", b"alpha", noreply=False), True, "set")
                t.eq(c.get(b"p:a"), b"alpha", "get")
                t.eq(c.get(b"p:missing"), None, "get missing")
                t.eq(c.add(b"p:a", b"x", noreply=False), False, "add existing")
                t.eq(c.add(b"p:b", b"beta", noreply=False), True, "add new")
                t.eq(c.replace(b"p:b", b"BETA", noreply=False), True, "replace")
                t.eq(c.append(b"p:b", b"!", noreply=False), True, "append")
                t.eq(c.prepend(b"p:b", b"<", noreply=False), True, "prepend")
                t.eq(c.get(b"p:b"), b"<BETA!", "value after replace/append/prepend")
                t.eq(c.set(b"p:n", b"41", noreply=False), True, "set counter")
                t.eq(c.incr(b"p:n", 1), 42, "incr")
                t.eq(c.decr(b"p:n", 50), 0, "decr below 0")
                t.eq(c.incr(b"p:nothere", 1), None, "incr missing")
                v, cas = c.gets(b"p:a")
                t.eq(v, b"alpha", "gets")
                t.eq(c.cas(b"p:a", b"alpha2", cas, noreply=False), True, "cas current")
                t.eq(c.cas(b"p:a", b"alpha3", cas, noreply=False), False, "cas stale -> EXISTS")
                t.eq(c.get(b"p:a"), b"alpha2", "value after cas")
                t.eq(c.touch(b"p:a", 100, noreply=False), True, "touch")
                t.eq(c.delete(b"p:a", noreply=False), True, "delete")
                t.eq(c.delete(b"p:a", noreply=False), False, "delete missing")
                t.eq(c.get(b"p:a"), None, "get after delete")
                c.set(b"p:nr", b"quiet", noreply=True)
                t.eq(c.get(b"p:nr"), b"quiet", "noreply set then get")

                t.begin("multiget across both backends")
                kv = {b"mk:%d" % i: b"mv:%d" % i for i in range(100)}
                t.eq(c.set_many(kv, noreply=False), [], "set_many of 100 keys")
                t.eq(c.get_many(list(kv) + [b"mk:none"]), kv, "get_many of 100 keys + 1 missing")
                g = c.gets_many(list(kv)[:20])
                t.eq(sorted(g), sorted(list(kv)[:20]), "gets_many through the proxy")
                direct = [Client((harness.LOOPBACK, b.port), connect_timeout=5, timeout=5)
                          for b in (b0, b1)]
                counts = [len(d.get_many(list(kv))) for d in direct]
                t.eq(sum(counts), 100, "each key on exactly one backend")
                t.check(all(n > 0 for n in counts), "keys spread over both backends",
                        "%r" % counts)
                for d in direct:
                    d.close()

                t.begin("values through the proxy")
                big = bytes((i * 13 + 5) % 256 for i in range(200 * 1024))
                t.eq(c.set(b"p:big", big, noreply=False), True, "set 200 KB")
                t.check(c.get(b"p:big") == big, "get 200 KB byte-exact")
                allb = bytes(range(256)) * 3
                c.set(b"p:bin", allb, noreply=False)
                t.eq(c.get(b"p:bin"), allb, "binary value byte-exact")
                with harness.Conn(pport) as raw:
                    t.eq(raw.request(b"get p:bin p:none p:b\r\n", b"END\r\n"),
                         b"VALUE p:bin 0 768\r\n" + allb
                         + b"\r\nVALUE p:b 0 6\r\n<BETA!\r\nEND\r\n",
                         "raw multiget reply through the proxy")
                c.close()
                t.check(proxy.poll() is None, "nutcracker still running")
            finally:
                harness.stop_pid(proxy)
            b0.check_alive(t)
            b1.check_alive(t)
        three_backends(t, args.server, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=60)
