"""mcrouter's lease dialect, delete hold-off and metaget as a byte-exact dialogue, shared by the
tests that speak it over TCP, over UDP on the kernel path (test_leases.py) and over the DPDK path
(test_dpdk_tap.py). `request(data, term)` sends one request and returns its whole reply (which
ends with `term`); every key starts with `prefix` so that one server can run it more than once.

The rules (docs/DESIGN.md, "Leases, stale reads and hold-off"):
  lease-get on a miss: LVALUE <key> <token> <flags> <bytes>, a fresh token (> 1, not in
  mcrouter's 0x7aceb00c space), then token 1 (a hot miss) for everyone else in the window;
  the data is the stale value when one is held. lease-set with the live token: STORED; with a
  dead one while a stale or leased entry exists: STALE_STORED (stored, still stale, never a
  hit); otherwise NOT_STORED. set, delete and add end a lease; delete keeps the value stale
  for lease-get; `delete <key> <seconds>` refuses add and lease-set for that long.
"""

import re

LVALUE = re.compile(rb"^LVALUE (\S+) (\d+) (\d+) (\d+)\r\n")


def lease_get(request, key):
    """(token or None for a VALUE hit, flags, data) of a lease-get."""
    raw = request(b"lease-get %s\r\n" % key, b"END\r\n")
    m = LVALUE.match(raw)
    if m:
        n = int(m.group(4))
        data = raw[m.end():m.end() + n]
        assert raw == m.group(0) + data + b"\r\nEND\r\n", raw
        return int(m.group(2)), int(m.group(3)), data
    m = re.match(rb"^VALUE (\S+) (\d+) (\d+)\r\n", raw)
    assert m, raw
    return None, int(m.group(2)), raw[m.end():m.end() + int(m.group(3))]


def lease_set(request, key, token, value, flags=0, exptime=0):
    return request(b"lease-set %s %d %d %d %d\r\n%s\r\n" % (key, token, flags, exptime,
                                                            len(value), value), b"\r\n")


def store(request, cmd, key, value, flags=0):
    return request(b"%s %s %d 0 %d\r\n%s\r\n" % (cmd, key, flags, len(value), value), b"\r\n")


def good_token(tok):
    return tok is not None and tok > 1 and (tok >> 32) != 0x7aceb00c and tok < 2 ** 64


def run(t, request, prefix=b"", stats=None):
    """The whole dialogue; `stats()` (optional) returns the server's `stats` as a dict."""
    k = lambda name: prefix + name  # noqa: E731
    before = stats() if stats else None

    t.begin("lease-get: one token per key per window, then hot misses")
    tok, flags, data = lease_get(request, k(b"L1"))
    t.check(good_token(tok), "first lease-get on a miss gets a token > 1", tok)
    t.eq((flags, data), (0, b""), "a miss without a stale value: flags 0, no data")
    t.eq(request(b"lease-get %s\r\n" % k(b"L1"), b"END\r\n"),
         b"LVALUE %s 1 0 0\r\n\r\nEND\r\n" % k(b"L1"), "second lease-get: hot miss, byte-exact")
    t.eq(request(b"get %s\r\n" % k(b"L1"), b"END\r\n"), b"END\r\n",
         "a plain get misses while the lease is out")
    tok2, _, _ = lease_get(request, k(b"L2"))
    t.check(good_token(tok2) and tok2 != tok, "another key, another token", (tok, tok2))

    t.begin("lease-set: STORED with the live token, STALE_STORED with another")
    t.eq(lease_set(request, k(b"L1"), tok ^ 0x5555, b"x"), b"STALE_STORED\r\n",
         "wrong token while the lease is live: STALE_STORED")
    t.eq(request(b"get %s\r\n" % k(b"L1"), b"END\r\n"), b"END\r\n",
         "a stale-stored value is never a hit")
    t.eq(request(b"lease-get %s\r\n" % k(b"L1"), b"END\r\n"),
         b"LVALUE %s 1 0 1\r\nx\r\nEND\r\n" % k(b"L1"),
         "hot miss carries the stale-stored value")
    t.eq(lease_set(request, k(b"L1"), tok, b"abc", flags=5), b"STORED\r\n",
         "the live token: STORED")
    t.eq(request(b"get %s\r\n" % k(b"L1"), b"END\r\n"),
         b"VALUE %s 5 3\r\nabc\r\nEND\r\n" % k(b"L1"), "then a normal hit")
    t.eq(request(b"lease-get %s\r\n" % k(b"L1"), b"END\r\n"),
         b"VALUE %s 5 3\r\nabc\r\nEND\r\n" % k(b"L1"), "lease-get of a hit is VALUE")
    t.eq(lease_set(request, k(b"L1"), tok, b"again"), b"NOT_STORED\r\n",
         "the token is spent: a fresh value nobody leased is not overwritten")
    t.eq(lease_set(request, k(b"nokey"), 12345, b"v"), b"NOT_STORED\r\n",
         "lease-set without any lease: NOT_STORED")

    t.begin("stale sets: set, delete and add end a lease")
    # delete between lease-get and lease-set
    tok3, _, _ = lease_get(request, k(b"D1"))
    t.eq(request(b"delete %s\r\n" % k(b"D1"), b"\r\n"), b"NOT_FOUND\r\n",
         "delete of a leased key that holds no value: NOT_FOUND")
    t.eq(lease_set(request, k(b"D1"), tok3, b"late"), b"NOT_STORED\r\n",
         "lease-set after a delete: NOT_STORED")
    t.eq(request(b"get %s\r\n" % k(b"D1"), b"END\r\n"), b"END\r\n", "nothing stored")
    # a set between lease-get and lease-set
    store(request, b"set", k(b"S1"), b"v1")
    t.eq(request(b"delete %s\r\n" % k(b"S1"), b"\r\n"), b"DELETED\r\n", "delete")
    tok4, flags4, data4 = lease_get(request, k(b"S1"))
    t.check(good_token(tok4) and data4 == b"v1", "lease-get after delete: token and stale value",
            (tok4, data4))
    t.eq(store(request, b"set", k(b"S1"), b"new"), b"STORED\r\n", "a writer sets a newer value")
    t.eq(lease_set(request, k(b"S1"), tok4, b"older"), b"NOT_STORED\r\n",
         "the late lease-set does not overwrite it")
    t.eq(request(b"get %s\r\n" % k(b"S1"), b"END\r\n"),
         b"VALUE %s 0 3\r\nnew\r\nEND\r\n" % k(b"S1"), "the newer value stays")
    # a delete while a stale value is held: the fill stays stale
    store(request, b"set", k(b"S2"), b"v1")
    request(b"delete %s\r\n" % k(b"S2"), b"\r\n")
    tok5, _, _ = lease_get(request, k(b"S2"))
    request(b"delete %s\r\n" % k(b"S2"), b"\r\n")
    t.eq(lease_set(request, k(b"S2"), tok5, b"filled"), b"STALE_STORED\r\n",
         "lease-set after a second delete: stored stale, not fresh")
    t.eq(request(b"get %s\r\n" % k(b"S2"), b"END\r\n"), b"END\r\n", "and never a hit")
    # add ends a lease too
    tok6, _, _ = lease_get(request, k(b"A1"))
    t.eq(store(request, b"add", k(b"A1"), b"added"), b"STORED\r\n", "add of a leased key")
    t.eq(lease_set(request, k(b"A1"), tok6, b"late"), b"NOT_STORED\r\n",
         "lease-set after an add: NOT_STORED")

    t.begin("stale reads after delete: lease-get only")
    store(request, b"set", k(b"R1"), b"stale-me", flags=9)
    request(b"delete %s\r\n" % k(b"R1"), b"\r\n")
    for cmd in (b"get", b"gets"):
        t.eq(request(b"%s %s\r\n" % (cmd, k(b"R1")), b"END\r\n"), b"END\r\n",
             "%s misses after delete, as memcached" % cmd.decode())
    t.eq(request(b"mg %s v\r\n" % k(b"R1"), b"\r\n"), b"EN\r\n", "mg misses after delete")
    tok7, flags7, data7 = lease_get(request, k(b"R1"))
    t.check(good_token(tok7) and (flags7, data7) == (9, b"stale-me"),
            "lease-get: token, the stale value and its own flags", (tok7, flags7, data7))
    t.eq(request(b"lease-get %s\r\n" % k(b"R1"), b"END\r\n"),
         b"LVALUE %s 1 9 8\r\nstale-me\r\nEND\r\n" % k(b"R1"), "hot miss with the stale value")

    t.begin("the meta protocol's states are the lease states")
    store(request, b"set", k(b"M1"), b"mv")
    t.eq(request(b"md %s I\r\n" % k(b"M1"), b"\r\n"), b"HD\r\n", "md I")
    tok8, _, data8 = lease_get(request, k(b"M1"))
    t.check(good_token(tok8) and data8 == b"mv", "lease-get after md I: token + stale value",
            (tok8, data8))
    t.eq(request(b"mg %s v\r\n" % k(b"M1"), b"mv\r\n"), b"VA 2 Z X\r\nmv\r\n",
         "mg then sees X and Z (a refill is on)")
    lease_get(request, k(b"M2"))
    t.eq(request(b"mg %s v N30\r\n" % k(b"M2"), b"\r\n\r\n"), b"VA 0 Z\r\n\r\n",
         "a token from lease-get makes mg N answer Z")
    t.eq(request(b"mg %s v N30\r\n" % k(b"M3"), b"\r\n\r\n"), b"VA 0 W\r\n\r\n",
         "mg N on a miss wins (W)")
    t.eq(request(b"lease-get %s\r\n" % k(b"M3"), b"END\r\n"),
         b"LVALUE %s 1 0 0\r\n\r\nEND\r\n" % k(b"M3"), "then lease-get is a hot miss")

    t.begin("delete hold-off")
    store(request, b"set", k(b"H1"), b"v")
    t.eq(request(b"delete %s 30\r\n" % k(b"H1"), b"\r\n"), b"DELETED\r\n", "delete k 30")
    t.eq(store(request, b"add", k(b"H1"), b"x"), b"NOT_STORED\r\n", "add refused in the hold-off")
    tok9, _, _ = lease_get(request, k(b"H1"))
    t.eq(lease_set(request, k(b"H1"), tok9, b"fill"), b"NOT_STORED\r\n",
         "lease-set refused in the hold-off, even with a live token")
    t.eq(store(request, b"set", k(b"H1"), b"s"), b"STORED\r\n", "set still works")
    t.eq(request(b"get %s\r\n" % k(b"H1"), b"END\r\n"), b"VALUE %s 0 1\r\ns\r\nEND\r\n" % k(b"H1"),
         "and is read back")
    t.eq(request(b"delete %s 30\r\n" % k(b"H2"), b"\r\n"), b"NOT_FOUND\r\n",
         "hold-off on a key that holds nothing")
    t.eq(store(request, b"add", k(b"H2"), b"x"), b"NOT_STORED\r\n", "still refuses add")
    store(request, b"set", k(b"H3"), b"v")
    t.eq(request(b"delete %s 0\r\n" % k(b"H3"), b"\r\n"), b"DELETED\r\n", "delete k 0")
    t.eq(store(request, b"add", k(b"H3"), b"x"), b"STORED\r\n", "is a plain delete")

    t.begin("metaget")
    store(request, b"set", k(b"G1"), b"v")
    t.eq(request(b"metaget %s\r\n" % k(b"G1"), b"END\r\n"),
         b"META %s age: 0; exptime: -1; from: unknown; is_transient: 0\r\nEND\r\n" % k(b"G1"),
         "metaget of a live item without exptime")
    t.eq(request(b"metaget %s\r\n" % k(b"nothere"), b"END\r\n"), b"END\r\n", "metaget miss")
    request(b"set %s 0 30 1\r\nv\r\n" % k(b"G2"), b"\r\n")
    got = request(b"metaget %s\r\n" % k(b"G2"), b"END\r\n")
    t.check(re.fullmatch(rb"META \S+ age: 0; exptime: (30|29); from: unknown; is_transient: 1"
                         rb"\r\nEND\r\n", got) is not None, "metaget: TTL 30 is transient", got)

    t.begin("bad input: memcached-style errors, nothing changed")
    bad = [
        (b"lease-get\r\n", b"ERROR\r\n"),
        (b"lease-get a b\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"metaget %s\r\n" % (b"k" * 251), b"CLIENT_ERROR bad command line format\r\n"),
        (b"lease-set %s 0 0 0 1\r\nx\r\n" % k(b"B"), b"CLIENT_ERROR invalid lease token\r\n"),
        (b"lease-set %s 1 0 0 1\r\nx\r\n" % k(b"B"), b"CLIENT_ERROR invalid lease token\r\n"),
        # a block of the stated length that does not end in "\r\n"
        (b"lease-set %s 3 0 0 2\r\nxyab" % k(b"B"), b"CLIENT_ERROR bad data chunk\r\n"),
        (b"delete %s -1\r\n" % k(b"B"),
         b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
        (b"delete %s soon\r\n" % k(b"B"),
         b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
    ]
    for req, reply in bad:
        t.eq(request(req, b"\r\n"), reply, "refused: %r" % req[:40])
    for tokstr in (b"abc", b"-5", b"18446744073709551616"):
        # as set with a bad number: the line is refused and the data line is a command of its own
        got = request(b"lease-set %s %s 0 0 1\r\nx\r\n" % (k(b"B"), tokstr), b"ERROR\r\n")
        t.eq(got, b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
             "token %r refused like set's bad numbers" % tokstr)
    t.eq(request(b"get %s\r\n" % k(b"B"), b"END\r\n"), b"END\r\n", "nothing stored by bad input")
    t.eq(request(b"version\r\n", b"\r\n")[:8], b"VERSION ", "still serving")

    if stats:
        after = stats()
        grew = lambda name, n: int(after[name]) - int(before[name]) >= n  # noqa: E731
        t.check(grew("cmd_lease_get", 14), "stats: cmd_lease_get counts")
        t.check(grew("cmd_lease_set", 10), "stats: cmd_lease_set counts")
        t.check(grew("lease_tokens", 9), "stats: lease_tokens counts")
        t.check(grew("lease_hot_misses", 4), "stats: lease_hot_misses counts")
        t.check(grew("lease_stale_served", 4), "stats: lease_stale_served counts")
        t.check(grew("lease_set_stale", 2), "stats: lease_set_stale counts")
        t.check(grew("lease_set_refused", 5), "stats: lease_set_refused counts")
        t.check(grew("delete_holdoffs", 2), "stats: delete_holdoffs counts")
        t.check(grew("holdoff_refused", 3), "stats: holdoff_refused counts")
