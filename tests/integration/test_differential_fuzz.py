"""Differential fuzzer: random but valid-looking command sequences sent to the server under test
and to a stock memcached side by side, replies compared byte for byte.

Each case is a few steps on a connection of its own (keys unique to the case, test_differential's
{k} templates; cas uniques from earlier replies through its {casN} templates). Commands: every
classic storage and retrieval command, incr/decr, delete, touch, gat/gats, flush_all, verbosity,
version, mn and the meta commands, with and without noreply; multigets; value sizes from 0 to
both sides of the -I limit; pipelines of many commands in one step; each step written in
random partial writes. Replies are normalised and compared as test_differential.py does,
through the reviewed intended differences (differential_corpus.INTENDED); the generator keeps
out of the differences no single reply shows (value sizes in the 17-byte band below -I, a
too-long key in a get pipelined after other requests).

Bounded (the default, what ./scripts/test runs): a fixed seed and case count. Long
(./scripts/fuzz): --seconds N with a random seed. A mismatch prints the seed and case number;
--seed S --case N --cases N+1 replays it alone. Ends with
    FUZZ differential executions=<cases> crashes=<cases that differ> commands=<n>
Timing decides nothing: no exptime here expires within a run, and the corpus's sleeps are not
used.

    /usr/bin/python3 tests/integration/test_differential_fuzz.py build/dataplane/daemon/cachetd
"""

import random
import sys
import threading
import time

import harness
import test_differential as td
from differential_corpus import INTENDED, apply_intended

# -m 1024: every slab class can have pages of its own, so neither server evicts (their
# eviction orders differ, and Cachet moves pages between classes where memcached does not).
FLAGS = dict(memory_mb=1024, threads=2, conns=1024, item_max=1024 * 1024)
ITEM_MAX = 1024 * 1024
# The largest value each stores at -I 1m for a key of k bytes (measured; INTENDED
# item_size_limit): ITEM_MAX - k - 59 in memcached (63 with nonzero flags), - 42 in Cachet.
MEMCACHED_HEADER_MAX = 63
CACHET_HEADER = 42
KEY_MAX_HERE = 20  # case keys ("fz<seed>_<case>_<n>") are shorter; {K250} is 250
# Data written per round (fresh servers each round), at most: far inside -m whatever the slab
# classes take.
ROUND_BYTES_MAX = 48 << 20


class Gen:
    """Commands for one case. Keys are {k}..{k5} and, rarely, the 250-byte {K250}."""

    def __init__(self, rnd, budget):
        self.r = rnd
        self.budget = budget  # [bytes the round may still write], shared by its cases
        self.have_cas = 0  # distinct cas uniques this case may have been shown so far
        self.near_limit = set()  # keys that may hold a value near -I: never appended to

    def key(self):
        r = self.r.random()
        if r < 0.03:
            return b"{K250}"
        return b"{k%s}" % (b"" if r < 0.4 else b"%d" % self.r.randrange(1, 6))

    def size(self, key, near_ok=True):
        r = self.r.random()
        if r < 0.7:
            n = self.r.choice([0, 1, 2, 3, 7, 10, 31, 100, 255, 1000, 4000])
        elif r < 0.93:
            n = self.r.randrange(0, 20000)
        elif near_ok and self.budget[0] > 2 * ITEM_MAX:
            # Around -I, outside the band where only Cachet stores (INTENDED item_size_limit):
            # below what memcached takes for the longest key, above what Cachet takes for none.
            k = 250 if key == b"{K250}" else KEY_MAX_HERE
            n = self.r.choice([ITEM_MAX - MEMCACHED_HEADER_MAX - k - self.r.randrange(0, 300),
                               ITEM_MAX - CACHET_HEADER + 1 + self.r.randrange(0, 40),
                               ITEM_MAX, ITEM_MAX + 1])
            self.near_limit.add(key)
        else:
            n = 5
        n = n if n <= max(self.budget[0], 0) else 5
        self.budget[0] -= n
        return n

    def value(self, n):
        if self.r.random() < 0.3:
            return (b"%d" % self.r.randrange(0, 1 << 64))[:n].ljust(n, b"0")
        c = bytes([self.r.randrange(33, 127)])
        v = c * n
        if n > 2 and self.r.random() < 0.2:
            v = v[:n // 2] + b"\r\n" + v[n // 2 + 2:]  # CRLF inside a value
        return v

    def noreply(self):
        return b" noreply" if self.r.random() < 0.15 else b""

    def exptime(self):
        # None expires during a run: 0, far relative, far absolute, or already past.
        return self.r.choice([b"0", b"0", b"1000", b"2592000", b"4102444800", b"-1",
                              b"1000000000"])

    def flags(self):
        return self.r.choice([b"0", b"0", b"1", b"65535", b"4294967295"])

    def storage(self):
        cmd = self.r.choice([b"set", b"set", b"set", b"add", b"replace", b"append",
                             b"prepend", b"cas"])
        key = self.key()
        joins = cmd in (b"append", b"prepend")
        if joins and key in self.near_limit:
            cmd, joins = b"set", False  # a join could land in the band (INTENDED item_size_limit)
        n = self.size(key, near_ok=not joins)
        extra = b""
        if cmd == b"cas":
            extra = b" " + self.cas_token()
        data = self.value(n)
        bad = self.r.random() < 0.03  # a data block that does not match its length
        if bad:
            data += b"xx"
        return (b"%s %s %s %s %d%s%s\r\n" % (cmd, key, self.flags(), self.exptime(), n, extra,
                                           self.noreply()) + data + b"\r\n")

    def cas_token(self):
        if self.have_cas and self.r.random() < 0.8:
            i = self.r.randrange(self.have_cas)
            return b"{cas%d}" % i if self.r.random() < 0.7 else b"{cas%d+1}" % i
        return b"%d" % self.r.choice([0, 1, 999999999])

    def retrieval(self, first):
        cmd = self.r.choice([b"get", b"get", b"gets", b"gat", b"gats"])
        keys = [self.key() for _ in range(self.r.choice([1, 1, 1, 2, 3, 5, 12]))]
        if first and self.r.random() < 0.02:
            keys.append(b"{K251}")  # alone in its step: INTENDED long_key_get_discards_queue
        if cmd in (b"gets", b"gats"):
            self.have_cas = min(self.have_cas + 1, 3)
        head = cmd + (b" " + self.exptime() if cmd in (b"gat", b"gats") else b"")
        return head + b" " + b" ".join(keys) + b"\r\n"

    def other(self):
        r = self.r.random()
        k = self.key()
        if r < 0.25:
            cmd = self.r.choice([b"incr", b"decr"])
            delta = self.r.choice([b"0", b"1", b"10", b"18446744073709551615", b"abc"])
            return b"%s %s %s%s\r\n" % (cmd, k, delta, self.noreply())
        if r < 0.45:
            return b"delete %s%s\r\n" % (k, self.noreply())
        if r < 0.6:
            return b"touch %s %s%s\r\n" % (k, self.exptime(), self.noreply())
        if r < 0.63:
            return b"flush_all%s\r\n" % self.noreply()
        if r < 0.66:
            return b"verbosity 0%s\r\n" % self.noreply()
        if r < 0.7:
            return self.r.choice([b"version\r\n", b"mn\r\n", b"bogus command\r\n"])
        return self.meta(k)

    def meta(self, k):
        r = self.r.random()
        if r < 0.35:
            flags = self.r.sample([b"v", b"k", b"c", b"f", b"s", b"q", b"h", b"u", b"O77",
                                   b"N1000", b"T1000"], self.r.randrange(0, 4))
            if b"c" in flags:
                self.have_cas = min(self.have_cas + 1, 3)
            return b"mg %s %s\r\n" % (k, b" ".join(flags))
        if r < 0.65:
            n = self.size(k, near_ok=False) % 5000
            modes = [b"MS", b"ME", b"MR"] + ([] if k in self.near_limit else [b"MA", b"MP"])
            flags = self.r.sample([b"c", b"k", b"q", b"F5", b"T1000", b"I"] + modes,
                                  self.r.randrange(0, 3))
            if self.have_cas and self.r.random() < 0.3:
                flags.append(b"C" + self.cas_token())
            return b"ms %s %d %s\r\n" % (k, n, b" ".join(flags)) + self.value(n) + b"\r\n"
        if r < 0.8:
            flags = self.r.sample([b"q", b"k", b"I", b"T1000", b"O5"], self.r.randrange(0, 3))
            return b"md %s %s\r\n" % (k, b" ".join(flags))
        flags = self.r.sample([b"v", b"N1000", b"J7", b"D3", b"MD", b"MI", b"q", b"c"],
                              self.r.randrange(0, 4))
        return b"ma %s %s\r\n" % (k, b" ".join(flags))

    def command(self, first):
        r = self.r.random()
        if r < 0.4:
            return self.storage()
        if r < 0.7:
            return self.retrieval(first)
        return self.other()

    def case(self):
        steps = []
        for _ in range(self.r.randrange(1, 5)):
            # A pipeline: one command, a few, or many.
            n = self.r.choice([1, 1, 2, 3, 5, 8, 20, 60])
            steps.append(b"".join(self.command(i == 0) for i in range(n)))
        return steps


def cutter(rnd):
    """A send() that writes a step in random pieces, now and then pausing between them."""
    def send(sock, data):
        if rnd.random() < 0.5:
            sock.sendall(data)
            return
        pos = 0
        while pos < len(data):
            n = rnd.choice([1, 2, 7, 100, 1500, 70000])
            sock.sendall(data[pos:pos + n])
            pos += n
            if rnd.random() < 0.05:
                time.sleep(0.001)
    return send


def run_cases(port, cases, out):
    for name, steps, seed in cases:
        try:
            out[name] = td.run_case(port, name, steps, set(), cutter(random.Random(seed)))
        except Exception as e:  # noqa: BLE001 - recorded as a difference
            out[name] = [("", ["<exception %r>" % e])]


def main():
    def extra(p):
        p.add_argument("--seed", type=int, default=20240610, help="generator seed")
        p.add_argument("--cases", type=int, default=150, help="cases per round")
        p.add_argument("--case", type=int, default=0, help="first case number (replays)")
        p.add_argument("--seconds", type=float, default=0,
                       help="run rounds of --cases until this much time has passed")
    args = harness.parse_args(__doc__, extra)
    t = harness.Checker("differential_fuzz", args.verbose)
    executions = mismatches = commands = 0
    used = set()
    t0 = time.monotonic()
    rnd_seed = args.seed
    while True:  # rounds: fresh servers, fresh seed
        with harness.Server(args.reference, name="reference memcached", **FLAGS) as ref, \
                harness.Server(args.server, name="server under test", **FLAGS) as sut:
            rnd = random.Random(rnd_seed)
            budget = [ROUND_BYTES_MAX]
            cases = []
            for n in range(args.case + args.cases):
                gen = Gen(random.Random(rnd.random()), budget)
                steps = gen.case()
                if n < args.case:
                    continue
                name = "fz%d_%d" % (rnd_seed % 100000, n)
                cases.append((name, steps, rnd.random()))
                commands += sum(s.count(b"\n") for s in steps)
            res_ref, res_sut = {}, {}
            th = [threading.Thread(target=run_cases, args=(ref.port, cases, res_ref)),
                  threading.Thread(target=run_cases, args=(sut.port, cases, res_sut))]
            for x in th:
                x.start()
            for x in th:
                x.join(600)
            for name, steps, _ in cases:
                executions += 1
                a = res_ref.get(name) or []
                b = res_sut.get(name) or []
                if not harness.is_memcached(args.server):
                    a = [(req, apply_intended(entries, used)) for req, entries in a]
                # Replies only: a request shown with its cas uniques expanded differs by server.
                if [e for _, e in a] == [e for _, e in b]:
                    t.check(True, "case %s" % name)
                    continue
                mismatches += 1
                lines = ["replay: --seed %d --case %s --cases 1" % (rnd_seed, name.split("_")[1])]
                for n in range(max(len(a), len(b))):
                    sa = a[n] if n < len(a) else ("", [])
                    sb = b[n] if n < len(b) else ("", [])
                    if sa[1] != sb[1]:
                        lines.append("step %d request: %s" % (n, sa[0] or sb[0]))
                        lines += ["  " + d for d in td.difflib.unified_diff(
                            sa[1], sb[1], "memcached", "server", lineterm="", n=2)][2:]
                t.fail("case %s: replies differ from memcached" % name, "\n".join(lines[:80]))
            ref.check_alive(t)
            sut.check_alive(t)
        if not args.seconds or time.monotonic() - t0 >= args.seconds:
            break
        rnd_seed += 1
    for d in INTENDED:
        if d.name in used:
            print("intended difference %s used: %s" % (d.name, d.why), flush=True)
    print("FUZZ differential executions=%d crashes=%d commands=%d (seed %d, %.0f s)"
          % (executions, mismatches, commands, args.seed, time.monotonic() - t0), flush=True)
    return t.finish()


def watchdog_s():
    """Generous: the bounded run takes seconds; a long one its --seconds and a round more."""
    seconds = 0.0
    for i, a in enumerate(sys.argv):
        if a == "--seconds" and i + 1 < len(sys.argv):
            seconds = float(sys.argv[i + 1])
        elif a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
    return int(seconds) + 600


if __name__ == "__main__":
    harness.run(main, watchdog_s=watchdog_s())
