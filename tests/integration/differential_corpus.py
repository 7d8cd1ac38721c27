"""The request corpus for test_differential.py: byte sequences covering every classic text
command with normal and edge arguments, noreply, pipelines and errors (plus a few meta commands).

A case is a name and a list of steps. Each step is sent on the case's own connection and its
reply read before the next step. Templates in step bytes:
  {k} {k1} {k2} ...   keys unique to the case ("<case>" and "<case>_1", ...)
  {K250} {K251}        250- and 251-byte keys unique to the case
  {cas0} {cas1+1} ...  the Nth distinct cas unique this server returned earlier in the case
                       (optionally plus or minus a number)
Cases named in JOINED compare the concatenation of their steps' replies.
Step kinds: plain bytes (a version sentinel follows them, so replies are read without waiting),
Raw(bytes) (no sentinel: for incomplete lines and unfinished data blocks; reply read until quiet),
Sleep(seconds).

Cases that depend on time are last (TIMED): a delayed flush_all affects every item.
"""

import random


class Raw:
    def __init__(self, data, quiet=0.3):
        self.data = data
        self.quiet = quiet


class Sleep:
    def __init__(self, seconds):
        self.seconds = seconds


CASES = []
JOINED = set()  # cases whose step replies are compared concatenated (timing may differ)


class Intended:
    """A reviewed, intended difference: where Cachet answers otherwise than memcached 1.6.18
    on purpose. `memcached` and `cachet` are normalised reply entries (test_differential's
    normalise()); the differential tests compare Cachet's reply with memcached's after
    replacing the one with the other, and print every difference they used. An entry without
    them is a difference no single reply line shows: the differential fuzzer keeps its traffic
    out of it (test_differential_fuzz.py says how)."""

    def __init__(self, name, why, memcached=None, cachet=None):
        self.name, self.why, self.memcached, self.cachet = name, why, memcached, cachet


# Every intended difference, with its reason. Keep it short: each entry is a decision.
INTENDED = [
    Intended("vivified_binary_key_echo",
             "mg N / ma N creating an item from a base64 key (b) mark it binary, so every meta "
             "reply echoes its key encoded (k<base64> b), as for an item ms stored. memcached "
             "1.6.18 forgets the mark on this path and echoes the decoded key raw: a key holding "
             "a space or CRLF then breaks the reply line (its own code says binary keys must not "
             "be printed back).",
             "HD kcachet b64 vivify W", "HD kY2FjaGV0IGI2NCB2aXZpZnk= b W"),
    Intended("vivified_binary_key_echo_again", "as vivified_binary_key_echo (a later mg k)",
             "HD kcachet b64 vivify Z", "HD kY2FjaGV0IGI2NCB2aXZpZnk= b Z"),
    Intended("item_size_limit",
             "Cachet's item header is 40 bytes and memcached's 56 (plus a NUL after the key), so "
             "at -I a value up to 17 bytes longer fits: a set in that band is STORED by Cachet "
             "and refused (SERVER_ERROR object too large for cache) by memcached. No client "
             "depends on the exact byte; matching it would waste 17 bytes of every item. The "
             "fuzzer generates sizes on both sides of the band, never in it."),
    Intended("long_key_get_discards_queue",
             "a get/gets/gat/gats naming a key over 250 bytes makes memcached 1.6.18 drop every "
             "reply still queued on the connection (its error path resets the response queue), "
             "so earlier pipelined requests go unanswered; Cachet answers them, then sends the "
             "CLIENT_ERROR. The corpus and the fuzzer send such a get first in its step only."),
]


def apply_intended(entries, used):
    """memcached's normalised reply entries as Cachet intends to answer them; adds the names of
    the differences applied to the set `used`."""
    out = []
    for e in entries:
        for d in INTENDED:
            if e == d.memcached:
                e = d.cachet
                used.add(d.name)
        out.append(e)
    return out


def case(name, *steps):
    assert all(c.isalnum() or c == "_" for c in name), name
    assert name not in [n for n, _ in CASES], name
    CASES.append((name, list(steps)))


# ---------------------------------------------------------------- storage commands
case("set_get", b"set {k} 0 0 5\r\nhello\r\nget {k}\r\n")
case("set_flags", b"set {k} 123 0 1\r\nx\r\nget {k}\r\nset {k} 4294967295 0 1\r\ny\r\nget {k}\r\n")
case("set_flags_2p32", b"set {k} 4294967296 0 1\r\nx\r\nget {k}\r\n")
case("set_flags_neg", b"set {k} -1 0 1\r\nx\r\nget {k}\r\n")
case("set_empty", b"set {k} 0 0 0\r\n\r\nget {k}\r\n")
case("set_overwrite", b"set {k} 1 0 3\r\nabc\r\nset {k} 2 0 5\r\nabcde\r\nget {k}\r\n")
case("set_exptime_neg", b"set {k} 0 -1 1\r\nx\r\nget {k}\r\n")
case("set_exptime_past_abs", b"set {k} 0 1000000000 1\r\nx\r\nget {k}\r\n")
case("set_exptime_future", b"set {k} 0 100 1\r\nx\r\nset {k1} 0 2592000 1\r\ny\r\n"
     b"set {k2} 0 4102444800 1\r\nz\r\nget {k} {k1} {k2}\r\n")
case("set_exptime_30days_plus1", b"set {k} 0 2592001 1\r\nx\r\nget {k}\r\n")
case("set_exptime_huge_neg", b"set {k} 0 -99999999999 1\r\nx\r\nget {k}\r\n")
case("set_flags_leading_zero", b"set {k} 007 0 1\r\nx\r\nget {k}\r\n")
case("set_exptime_bad", b"set {k} 0 abc 1\r\nx\r\nget {k}\r\n")
case("set_noreply", b"set {k} 0 0 1 noreply\r\nx\r\nget {k}\r\n")
case("set_extra_token", b"set {k} 0 0 1 garbage\r\nx\r\nget {k}\r\n")
case("set_too_few_tokens", b"set {k} 0 0\r\nx\r\nget {k}\r\n")
case("set_too_many_tokens", b"set {k} 0 0 1 noreply extra\r\nx\r\nget {k}\r\n")
case("set_spaces", b"set  {k}  0  0  1\r\nx\r\nget   {k}  \r\n")
case("set_trailing_space", b"set {k} 0 0 1 \r\nx\r\nget {k} \r\n")
case("set_bytes_leading_zero", b"set {k} 0 0 01\r\nx\r\nget {k}\r\n")
case("set_bytes_plus", b"set {k} 0 0 +1\r\nx\r\nget {k}\r\n")
case("set_bytes_hex", b"set {k} 0 0 0x1\r\nx\r\nget {k}\r\n")
case("set_bytes_neg", b"set {k} 0 0 -1\r\nget {k}\r\n")
case("set_bytes_huge", b"set {k} 0 0 99999999999999999999\r\nget {k}\r\n")
case("set_bytes_intmax", b"set {k} 0 0 2147483646\r\nget {k}\r\n")
case("set_bytes_alpha", b"set {k} 0 0 abc\r\nxyz\r\nget {k}\r\n")
case("set_lf_only_line", b"set {k} 0 0 1\nx\r\nget {k}\n")
case("set_data_lf_only", b"set {k} 0 0 1\r\nx\nget {k}\r\n")
case("set_uppercase", b"SET {k} 0 0 1\r\nx\r\nGET {k}\r\n")
case("set_tab", b"set\t{k} 0 0 1\r\nx\r\n")
case("add", b"add {k} 0 0 1\r\na\r\nadd {k} 0 0 1\r\nb\r\nget {k}\r\n")
case("add_noreply", b"add {k} 0 0 1 noreply\r\na\r\nadd {k} 0 0 1 noreply\r\nb\r\nget {k}\r\n")
case("replace", b"replace {k} 0 0 1\r\na\r\nget {k}\r\nset {k} 0 0 1\r\nb\r\n"
     b"replace {k} 3 0 2\r\ncc\r\nget {k}\r\n")
case("replace_noreply", b"replace {k} 0 0 1 noreply\r\na\r\nget {k}\r\n")
case("append_prepend", b"set {k} 5 0 2\r\nmm\r\nappend {k} 9 0 2\r\nzz\r\n"
     b"prepend {k} 7 0 2\r\naa\r\nget {k}\r\n")
case("append_missing", b"append {k} 0 0 1\r\na\r\nprepend {k} 0 0 1\r\nb\r\nget {k}\r\n")
case("append_noreply", b"set {k} 0 0 1\r\nm\r\nappend {k} 0 0 1 noreply\r\nz\r\n"
     b"prepend {k} 0 0 1 noreply\r\na\r\nget {k}\r\n")
case("append_grow", b"set {k} 0 0 1\r\n0\r\n"
     + b"".join(b"append {k} 0 0 100\r\n" + (b"%d" % i) * (100 // len(b"%d" % i)) + b"\r\n"
                for i in range(1, 31)) + b"get {k}\r\n")
case("append_empty", b"set {k} 0 0 3\r\nabc\r\nappend {k} 0 0 0\r\n\r\nget {k}\r\n")
case("append_bad_chunk", b"set {k} 0 0 3\r\nabc\r\nappend {k} 0 0 2\r\nxyz\r\nget {k}\r\n")

# ---------------------------------------------------------------- retrieval
case("get_miss", b"get {k}\r\n")
case("get_after_flush_touch", b"set {k} 0 0 1\r\nx\r\nflush_all\r\ntouch {k} 10\r\n"
     b"gat 10 {k}\r\nincr {k} 1\r\nappend {k} 0 0 1\r\ny\r\nget {k}\r\n")
case("get_multi", b"set {k1} 1 0 1\r\na\r\nset {k2} 2 0 2\r\nbb\r\n"
     b"get {k1} {k} {k2} {k1}\r\n")
case("get_no_key", b"get\r\ngets\r\nget \r\n")
case("get_24_keys", b"".join(b"set {k}%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(0, 30, 2))
     + b"get " + b" ".join(b"{k}%d" % i for i in range(24)) + b"\r\n")
case("get_25_keys", b"".join(b"set {k}%d 0 0 1\r\n%d\r\n" % (i, i % 10) for i in range(25))
     + b"get " + b" ".join(b"{k}%d" % i for i in range(25)) + b"\r\n")
case("get_100_keys", b"".join(b"set {k}%d %d 0 %d\r\n%s\r\n" % (i, i, i, b"v" * i)
                              for i in range(0, 100, 3))
     + b"get " + b" ".join(b"{k}%d" % i for i in range(100)) + b"\r\n"
     + b"gets " + b" ".join(b"{k}%d" % i for i in range(0, 100, 9)) + b"\r\n")
case("get_key_250", b"set {K250} 0 0 1\r\nx\r\nget {K250}\r\ngets {K250}\r\ndelete {K250}\r\n")
# memcached 1.6.18 quirk: a too-long key in get/gets/gat/gats discards every reply still queued on
# the connection, including replies to earlier pipelined commands. So each such command is a
# step of its own here (nothing queued before it); Cachet need not copy the discarding.
case("get_key_251", b"get {K251}\r\n", b"get a {K251}\r\n", b"get {K251} b\r\n",
     b"gets {K251}\r\n")
case("set_key_251", b"set {K251} 0 0 1\r\nx\r\n", b"get {K251}\r\n")
case("key_251_others", b"delete {K251}\r\nincr {K251} 1\r\ntouch {K251} 1\r\n"
     b"add {K251} 0 0 1\r\nx\r\ncas {K251} 0 0 1 1\r\nx\r\nappend {K251} 0 0 1\r\nx\r\n",
     b"gat 1 {K251}\r\n", b"gats 1 {K251}\r\n")
case("key_control_chars", b"set \x01\x02{k}\x7f 0 0 1\r\nx\r\nget \x01\x02{k}\x7f\r\n")
case("key_nul", b"set {k}\x00x 0 0 1\r\ny\r\nget {k}\x00x\r\nget {k}\r\n")
case("key_with_cr", b"set {k}\rx 0 0 1\r\nv\r\nget {k}\rx\r\nget {k}\r\n")
case("get_many_spaces", b"set {k} 0 0 1\r\nv\r\nget    {k}     {k}   \r\nget\t{k}\r\n")
case("key_high_bytes", b"set {k}\xc3\xa9\xff 0 0 1\r\nz\r\nget {k}\xc3\xa9\xff\r\n")
case("gets", b"set {k} 3 0 2\r\nhi\r\ngets {k}\r\ngets {k} {k1}\r\n")

# ---------------------------------------------------------------- cas
case("cas_flow", b"set {k} 0 0 2\r\nv1\r\n", b"gets {k}\r\n",
     b"cas {k} 0 0 2 {cas0}\r\nv2\r\n", b"cas {k} 0 0 2 {cas0}\r\nv3\r\n", b"gets {k}\r\n")
case("cas_not_found", b"cas {k} 0 0 1 1\r\nx\r\n", b"cas {k} 0 0 1 0\r\nx\r\n")
case("cas_wrong_unique", b"set {k} 0 0 1\r\na\r\n", b"gets {k}\r\n",
     b"cas {k} 0 0 1 {cas0+1}\r\nb\r\ncas {k} 0 0 1 0\r\nc\r\nget {k}\r\n")
case("cas_noreply", b"set {k} 0 0 1\r\na\r\n", b"gets {k}\r\n",
     b"cas {k} 0 0 1 {cas0} noreply\r\nb\r\ncas {k} 0 0 1 {cas0} noreply\r\nc\r\ngets {k}\r\n")
case("cas_bad_unique", b"set {k} 0 0 1\r\na\r\ncas {k} 0 0 1 abc\r\nb\r\n"
     b"cas {k} 0 0 1 -1\r\nc\r\ncas {k} 0 0 1\r\nd\r\nget {k}\r\n")
case("cas_after_delete", b"set {k} 0 0 1\r\na\r\n", b"gets {k}\r\n",
     b"delete {k}\r\ncas {k} 0 0 1 {cas0}\r\nb\r\n")
case("cas_changes", b"set {k} 0 0 1\r\n1\r\n", b"gets {k}\r\n", b"touch {k} 100\r\ngets {k}\r\n",
     b"incr {k} 1\r\ngets {k}\r\n", b"append {k} 0 0 1\r\n0\r\ngets {k}\r\n",
     b"gat 0 {k}\r\ngats 0 {k}\r\n", b"set {k} 0 0 1\r\n5\r\ngets {k}\r\n",
     b"decr {k} 1\r\ngets {k}\r\n")
case("cas_distinct", b"set {k1} 0 0 1\r\na\r\nset {k2} 0 0 1\r\nb\r\n", b"gets {k1} {k2}\r\n",
     b"cas {k1} 0 0 1 {cas1}\r\nx\r\ncas {k2} 0 0 1 {cas1}\r\ny\r\nget {k1} {k2}\r\n")

# ---------------------------------------------------------------- delete
case("delete", b"set {k} 0 0 1\r\na\r\ndelete {k}\r\ndelete {k}\r\nget {k}\r\n")
case("delete_noreply", b"set {k} 0 0 1\r\na\r\ndelete {k} noreply\r\ndelete {k} noreply\r\n"
     b"get {k}\r\n")
case("delete_zero", b"set {k} 0 0 1\r\na\r\ndelete {k} 0\r\nset {k} 0 0 1\r\nb\r\n"
     b"delete {k} 0 noreply\r\nget {k}\r\n")
case("delete_no_key", b"delete\r\n")

# ---------------------------------------------------------------- incr / decr
case("incr_basic", b"set {k} 5 0 2\r\n10\r\nincr {k} 5\r\ndecr {k} 3\r\nget {k}\r\n")
case("incr_missing", b"incr {k} 1\r\ndecr {k} 1\r\n")
case("incr_wrap", b"set {k} 0 0 20\r\n18446744073709551615\r\nincr {k} 1\r\nget {k}\r\n"
     b"set {k} 0 0 20\r\n18446744073709551615\r\nincr {k} 10\r\nget {k}\r\n"
     b"incr {k} 18446744073709551615\r\nget {k}\r\n")
case("decr_below_zero", b"set {k} 0 0 2\r\n10\r\ndecr {k} 11\r\nget {k}\r\ndecr {k} 1\r\n"
     b"decr {k} 18446744073709551615\r\nget {k}\r\n")
case("decr_in_place_pad", b"set {k} 0 0 3\r\n100\r\ndecr {k} 1\r\nget {k}\r\ndecr {k} 90\r\n"
     b"get {k}\r\nincr {k} 1\r\nget {k}\r\nincr {k} 100\r\nget {k}\r\n")
case("decr_in_place_pad_long", b"set {k} 0 0 20\r\n10000000000000000000\r\n"
     b"decr {k} 9999999999999999999\r\nget {k}\r\nincr {k} 5\r\nget {k}\r\n")
case("incr_grow", b"set {k} 0 0 2\r\n99\r\nincr {k} 1\r\nget {k}\r\nincr {k} 99900\r\n"
     b"get {k}\r\n")
case("incr_to_max", b"set {k} 0 0 1\r\n1\r\nincr {k} 18446744073709551614\r\nget {k}\r\n")
case("incr_delta_bad", b"set {k} 0 0 1\r\n1\r\nincr {k} abc\r\nincr {k} -1\r\n"
     b"incr {k} 18446744073709551616\r\nincr {k} 1.5\r\nincr {k}\r\nincr {k} 0x10\r\n"
     b"get {k}\r\n")
case("incr_delta_zero", b"set {k} 0 0 3\r\n007\r\nincr {k} 0\r\nget {k}\r\n")
case("incr_non_numeric", b"set {k} 0 0 3\r\nabc\r\nincr {k} 1\r\ndecr {k} 1\r\n"
     b"set {k} 0 0 3\r\n12a\r\nincr {k} 1\r\nset {k} 0 0 2\r\n-1\r\nincr {k} 1\r\n"
     b"set {k} 0 0 0\r\n\r\nincr {k} 1\r\nget {k}\r\n")
case("incr_long_value", b"set {k} 0 0 24\r\n123456789012345678901234\r\nincr {k} 1\r\n"
     b"set {k} 0 0 20\r\n18446744073709551616\r\nincr {k} 1\r\nget {k}\r\n")
case("incr_spaces_value", b"set {k} 0 0 4\r\n  12\r\nincr {k} 1\r\nget {k}\r\n"
     b"set {k} 0 0 4\r\n12  \r\nincr {k} 1\r\nget {k}\r\n")
case("incr_plus_value", b"set {k} 0 0 2\r\n+5\r\nincr {k} 1\r\nget {k}\r\n")
case("incr_delta_plus", b"set {k} 0 0 1\r\n5\r\nincr {k} +3\r\nget {k}\r\n")
case("incr_noreply", b"set {k} 0 0 1\r\n1\r\nincr {k} 5 noreply\r\ndecr {k} 2 noreply\r\n"
     b"incr {k1} 1 noreply\r\nincr {k} abc noreply\r\nget {k}\r\n")
case("incr_keeps_flags", b"set {k} 77 0 1\r\n1\r\nincr {k} 1\r\nget {k}\r\n")
case("incr_no_args", b"incr\r\ndecr\r\nincr {k}\r\n")

# ---------------------------------------------------------------- touch / gat / gats
case("touch", b"set {k} 0 0 1\r\nx\r\ntouch {k} 100\r\ntouch {k1} 100\r\ntouch {k} 0\r\n"
     b"get {k}\r\n")
case("touch_bad", b"set {k} 0 0 1\r\nx\r\ntouch {k}\r\ntouch {k} abc\r\ntouch\r\n"
     b"touch {k} 1 2 3\r\n")
case("touch_noreply", b"set {k} 0 0 1\r\nx\r\ntouch {k} 100 noreply\r\ntouch {k1} 1 noreply\r\n"
     b"get {k}\r\n")
case("touch_negative", b"set {k} 0 0 1\r\nx\r\ntouch {k} -1\r\nget {k}\r\n")
case("touch_absolute_past", b"set {k} 0 0 1\r\nx\r\ntouch {k} 1000000000\r\nget {k}\r\n")
case("gat_absolute_past", b"set {k} 0 0 1\r\nx\r\ngat 1000000000 {k}\r\nget {k}\r\n")
case("gat", b"set {k} 4 0 2\r\nhi\r\ngat 100 {k}\r\ngat 100 {k1}\r\ngat 0 {k} {k1} {k}\r\n")
case("gats", b"set {k} 4 0 2\r\nhi\r\ngats 100 {k}\r\ngats 0 {k} {k1}\r\n", b"gets {k}\r\n")
case("gat_bad", b"gat\r\ngat 10\r\ngat abc {k}\r\ngats\r\ngat {K251}\r\n", b"gat 1 {K251}\r\n")
case("gat_negative", b"set {k} 0 0 1\r\nx\r\ngat -1 {k}\r\nget {k}\r\n")

# ---------------------------------------------------------------- flush_all / misc commands
case("flush_all", b"set {k} 0 0 1\r\nx\r\nflush_all\r\nget {k}\r\nset {k1} 0 0 1\r\ny\r\n"
     b"get {k1}\r\n")
case("flush_all_variants", b"flush_all 0\r\nflush_all noreply\r\nflush_all 0 noreply\r\n"
     b"flush_all -1\r\nflush_all abc\r\nflush_all 1 2 3\r\nset {k} 0 0 1\r\nz\r\nget {k}\r\n")
case("flush_then_add", b"set {k} 0 0 1\r\nx\r\nflush_all\r\nadd {k} 0 0 1\r\ny\r\n"
     b"replace {k1} 0 0 1\r\nz\r\nget {k} {k1}\r\n")
case("admin_commands", b"cache_memlimit 64\r\ncache_memlimit\r\ncache_memlimit abc\r\n"
     b"slabs automove 1\r\nslabs automove 0\r\nslabs automove 9\r\n")
case("verbosity", b"verbosity 1\r\nverbosity 0\r\nverbosity 0 noreply\r\nverbosity\r\n"
     b"verbosity abc\r\nverbosity 1 2 3\r\n")
case("version", b"version\r\nversion\r\n")
case("version_args", b"version x\r\n")
case("shutdown_disabled", b"shutdown\r\n")
case("quit", Raw(b"set {k} 0 0 1\r\nx\r\nget {k}\r\nquit\r\nget {k}\r\n"))
case("quit_args", Raw(b"quit now\r\n"))
case("unknown", b"bogus\r\nbogus a b c\r\n\r\n\n \r\n")
case("unknown_long", b"x" * 2000 + b"\r\n")
case("binary_junk_ascii", b"\x00\x01\x02\xff\xfe\r\n\x00\r\n")
case("stats", b"stats\r\n")
case("stats_settings", b"stats settings\r\n")
case("stats_items_slabs", b"set {k} 0 0 10\r\n0123456789\r\nstats items\r\nstats slabs\r\n")
case("stats_sizes", b"stats sizes\r\n")
case("stats_reset", b"stats reset\r\n")
case("stats_bogus", b"stats bogus\r\nstats items extra\r\n")

# ---------------------------------------------------------------- bad input and recovery
case("bad_chunk_then_cmd", b"set {k} 0 0 3\r\nabcde\r\nget {k}\r\n")
case("bad_chunk_short", b"set {k} 0 0 3\r\nab\r\n\r\nget {k}\r\n")
case("bad_chunk_keeps_old", b"set {k} 0 0 3\r\nold\r\nset {k} 0 0 3\r\nnewXX\r\nget {k}\r\n")
case("bad_chunk_noreply", b"set {k} 0 0 3 noreply\r\nabcde\r\nget {k}\r\n")
case("too_large", b"set {k} 0 0 3\r\nold\r\nset {k} 0 0 1048577\r\n" + b"L" * 1048577 + b"\r\n"
     b"get {k}\r\n")
case("too_large_noreply", b"set {k} 0 0 1048600 noreply\r\n" + b"L" * 1048600 + b"\r\nget {k}\r\n")
# memcached sends SERVER_ERROR only after the declared data is swallowed (so in step 1); the
# same bytes sent at once (step 0) are equivalent, so this case compares its steps joined.
case("too_large_split", Raw(b"set {k} 0 0 2000000\r\n" + b"S" * 1000000),
     b"S" * 1000000 + b"\r\nget {k}\r\n")
JOINED.add("too_large_split")
case("long_line_no_newline", Raw(b"y" * 4096))
case("long_get_no_newline", Raw(b"get " + b"g" * 4000), b"\r\n")
case("partial_then_rest", Raw(b"set {k} 0 0 10\r\nabc"), b"defghij\r\nget {k}\r\n")
case("partial_line", Raw(b"get {k}"), b" {k1}\r\n")
_rnd = random.Random(7)
case("random_junk", b"\x00" + bytes(_rnd.randrange(256) for _ in range(1500)) + b"\r\n")
case("random_junk_lines", b"".join(bytes(_rnd.choice(b"abc 019\x00\xff\t") for _ in range(60))
                                   + b"\r\n" for _ in range(20)))
case("noreply_errors", b"set {k} 0 0 -1 noreply\r\nset {k} 0 0 3 noreply\r\nabcde\r\n"
     b"incr {k} 1 noreply\r\ntouch {k} abc noreply\r\nset {k} abc 0 1 noreply\r\nx\r\n"
     b"get {k} noreply\r\nbogus noreply\r\n")
case("noreply_mixed_pipeline", b"".join(b"set {k}%d 0 0 1 noreply\r\n%d\r\nget {k}%d\r\n"
                                        b"incr {k}%d 1 noreply\r\ngets {k}%d\r\n"
                                        % (i, i, i, i, i) for i in range(10)))

# ---------------------------------------------------------------- pipelines and sizes
case("pipeline_200", b"".join(b"set {k}%d %d 0 %d\r\n%s\r\n" % (i, i, len(b"v%d" % i), b"v%d" % i)
                              for i in range(200))
     + b"".join(b"get {k}%d\r\n" % i for i in range(200)))
case("pipeline_mixed", b"set {k} 0 0 1\r\n1\r\nincr {k} 9\r\nget {k}\r\nappend {k} 0 0 1\r\nx\r\n"
     b"get {k}\r\nbogus\r\ndelete {k}\r\nadd {k} 0 0 1\r\na\r\nreplace {k} 0 0 1\r\nb\r\n"
     b"prepend {k} 0 0 1\r\nc\r\ntouch {k} 100\r\ngat 0 {k}\r\ndelete {k} noreply\r\n"
     b"get {k}\r\nverbosity 0\r\nflush_all 0 noreply\r\nset {k1} 0 0 2 noreply\r\nzz\r\n"
     b"get {k1}\r\n")
case("pipeline_noreply_1000", b"".join(b"set {k}%d 0 0 4 noreply\r\n%04d\r\n" % (i, i)
                                       for i in range(1000))
     + b"get " + b" ".join(b"{k}%d" % i for i in range(0, 1000, 37)) + b"\r\n")
case("value_500k", b"set {k} 9 0 512000\r\n" + bytes(i % 256 for i in range(512000))
     + b"\r\nget {k}\r\n")
case("value_1000000", b"set {k} 0 0 1000000\r\n" + b"M" * 1000000 + b"\r\nget {k}\r\n")
case("value_all_bytes", b"set {k} 0 0 256\r\n" + bytes(range(256)) + b"\r\nget {k}\r\n")
case("value_crlf_inside", b"set {k} 0 0 12\r\nEND\r\nVALUE \r\nget {k}\r\n")

# ---------------------------------------------------------------- meta commands (memcached 1.6)
case("meta_noop", b"mn\r\n")
case("meta_set_get", b"ms {k} 2\r\nhi\r\nmg {k} v\r\nmg {k} v f s k\r\nmg {k1} v\r\n"
     b"mg {k1}\r\nmg {k}\r\n")
case("meta_flags", b"ms {k} 2 F5 T0\r\nhi\r\nmg {k} f v t\r\nmg {k} c\r\n")
case("meta_delete", b"ms {k} 1\r\nx\r\nmd {k}\r\nmd {k}\r\nmg {k} v\r\n")
case("meta_arith", b"ma {k}\r\nms {k} 1\r\n5\r\nma {k}\r\nma {k} v\r\nma {k} MD D2 v\r\n")
case("meta_quiet", b"ms {k} 1 q\r\nx\r\nmg {k1} v q\r\nmg {k} v q\r\nmn\r\n")
case("meta_opaque", b"mg {k} O123 v\r\nms {k} 1 O9\r\nx\r\nmn\r\n")
case("meta_bad", b"mg\r\nms {k}\r\nms {k} abc\r\nmg {K251} v\r\nme\r\n")
# Flags echo in request order; h before and after a fetch (u fetches nothing); q drops only the
# nominal reply of each command (mg: EN; ms, md: HD; ma: a change), never an error.
O33 = b"O" + b"1" * 32  # an opaque token over memcached's 32 bytes
B64_ONE = b"Y2FjaGV0IGI2NCBvbmU="  # base64 keys (flag b): "cachet b64 one", ...
B64_TWO = b"Y2FjaGV0DQpiNjQgdHdv"  # "cachet\r\nb64 two"
B64_VIV = b"Y2FjaGV0IGI2NCB2aXZpZnk="  # "cachet b64 vivify"
case("meta_get_flags", b"ms {k} 2 F7\r\nhi\r\nmg {k} s v f t c k O123 q\r\nmg {k} h u\r\n"
     b"mg {k} h\r\nmg {k} h\r\nmg {k1} k O9\r\nmg {k1} q k v\r\nmg {k} q\r\nmn\r\n")
case("meta_quiet_each", b"ms {k} 1 q\r\nx\r\nms {k} 1 q ME\r\ny\r\nmd {k1} q\r\nmd {k} q\r\n"
     b"ma {k2} q\r\nms {k2} 1\r\n5\r\nma {k2} q\r\nma {k2} q C1\r\nma {k3} N0 q\r\n"
     b"ms {k4} 2 q\r\nhiXX\r\nmg {k4} q Z\r\nmn\r\nmg {k2} v\r\n")
case("meta_set_modes", b"ms {k} 2 MA\r\nhi\r\nms {k} 2 MP\r\nhi\r\nms {k} 2 MR\r\nhi\r\n"
     b"ms {k} 2\r\nmm\r\nms {k} 2 MA\r\naa\r\nms {k} 2 MP\r\nzz\r\nmg {k} v\r\n"
     b"ms {k} 2 MR F3\r\nxx\r\nms {k} 2 ME\r\nyy\r\nms {k} 2 MS T0\r\nss\r\nmg {k} v f t\r\n")
case("meta_set_cas", b"ms {k} 2 c k O5\r\nhi\r\nms {k} 2 c ME\r\nhi\r\nms {k} 2 c C1\r\nhi\r\n"
     b"ms {k1} 2 c C1\r\nhi\r\nms {k} 2 Ock k c\r\nhi\r\nms {k} 2 O\r\nhi\r\n",
     b"mg {k} c\r\n", b"ms {k} 1 C{cas3} c\r\nz\r\nms {k} 1 C{cas3}\r\ny\r\n"
     b"ms {k} 2 MA C0\r\n++\r\nms {k} 2 MA C1\r\n--\r\nms {k2} 1 ME C5\r\na\r\nmg {k} v\r\n")
case("meta_set_refused", b"ms {k} 2\r\nhi\r\nms {k} 2 Z\r\nxx\r\nms {k} 2 MX\r\nxx\r\n"
     b"ms {k} 2 Mxx\r\nxx\r\nms {k} 2 c c\r\nxx\r\nms {k} 2 Fabc\r\nxx\r\nms {k} 2 F-1\r\nxx\r\n"
     b"ms {k} 2 " + O33 + b"\r\nxx\r\nms {k} 2 " + O33 + b" MX\r\nxx\r\nms {k} 2 E1\r\nxx\r\n"
     b"ms {k} 3\r\nxxxx\r\nms {k} 2 q\r\nxx\r\n\r\nmg {k} v\r\nms {k} -1\r\nms {k} x y\r\n"
     b"ms {K251} 1\r\nx\r\n")
case("meta_set_too_large", b"ms {k} 2\r\nhi\r\nms {k} 1048577 ME\r\n" + b"L" * 1048577
     + b"\r\nmg {k} v\r\nms {k1} 2\r\nhi\r\nms {k1} 1048577 MA Z\r\n" + b"L" * 1048577
     + b"\r\nmg {k1} v\r\n")
case("meta_base64", b"ms " + B64_ONE + b" 2 b k\r\nhi\r\nmg " + B64_ONE + b" b k v\r\n"
     b"mg " + B64_TWO + b" b v\r\nmd " + B64_ONE + b" b k q\r\nmg " + B64_ONE + b" b k\r\n"
     b"me " + B64_ONE + b" b\r\nms !" + B64_TWO + b" 2 b k\r\nhi\r\nmg a1 b\r\nmd a1 b\r\n"
     b"ma a1 b\r\nme a1 b\r\nms a1 2 b\r\nhi\r\nmn\r\n")
case("meta_delete_flags", b"md {k}\r\nmd {k} q\r\nmd {k} k O9\r\nms {k} 2\r\nhi\r\n"
     b"md {k} C99999999\r\nmd {k} q k\r\nmd {k}\r\nmd {k} Z\r\nmd {k} v v\r\nmd {k} " + O33
     + b"\r\nmd {k} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n", b"ms {k} 1\r\nx\r\n",
     b"mg {k} c\r\n", b"md {k} C{cas0} q\r\nmg {k}\r\n")
case("meta_stale_win", b"ms {k} 2\r\nhi\r\nmd {k} I\r\nmg {k} v c\r\nmg {k} v\r\nmg {k}\r\n"
     b"md {k} I q\r\nmg {k}\r\nmg {k}\r\nms {k} 3 I C1\r\nnew\r\nmg {k} v t\r\n"
     b"ms {k} 3 I C99999999\r\nnwr\r\nmg {k} v\r\nget {k}\r\nms {k} 2\r\nhi\r\nmg {k}\r\n"
     b"ms {k1} 2 T100\r\nhi\r\nmd {k1} I T-1\r\nmg {k1} v\r\nmd {k1} T30\r\n")
case("meta_stale_cas_zero", b"set {k} 0 0 1\r\nA\r\nms {k} 1 I C0\r\nB\r\nmg {k} v\r\n"
     b"ms {k} 1 I C0 q\r\nB\r\nmn\r\n")
case("meta_vivify_recache", b"mg {k} N30 v s f c\r\nmg {k} N30 v c\r\nms {k} 3\r\nnew\r\n"
     b"mg {k} v N30\r\nmg {k1} t N30\r\nmg {k2} N30 q\r\nmg {k2} q\r\nms {k3} 2 T100\r\nhi\r\n"
     b"mg {k3} R30\r\nmg {k3} R200\r\nmg {k3} R200\r\nms {k4} 2\r\nhi\r\nmg {k4} R30\r\n"
     b"mg " + B64_VIV + b" b N30 k\r\nmg " + B64_VIV + b" b k\r\nmg {k5} N30 " + O33 + b"\r\n"
     b"mg {k5}\r\n")
case("meta_arith_flags", b"ma {k}\r\nma {k} N0 J10 v\r\nma {k} MD D5 v\r\nma {k} M- D100 v\r\n"
     b"ma {k} M+ D3 v k O1\r\nma {k} MI v c t\r\nma {k} MX v\r\nma {k} Mxx\r\nma {k} Dabc\r\n"
     b"ma {k} D-1\r\nma {k} Z\r\nma {k} t t\r\nma {k} C1 v O2 k\r\nma {k} C0 v\r\n"
     b"ma {k} D18446744073709551615 v\r\nma {k} MD D18446744073709551615 v\r\n"
     b"ms {k1} 0\r\n\r\nma {k1} C1\r\nms {k2} 3\r\nabc\r\nma {k2} C1\r\nma {k2}\r\n"
     b"ms {k3} 2\r\n99\r\nma {k3} v\r\nmg {k3} v\r\nma {k4} N0 J5 v t\r\nget {k} {k4}\r\n")
case("meta_errors", b"mg {k} v v\r\nmg {k} v V\r\nmg {k} \x80\r\nmg {k} E1\r\nmg {k} x\r\n"
     b"mg {k} Nabc\r\nmg {k} Nabc Mxx\r\nmg {k} Mxx Nabc\r\nmg {k} Fabc\r\nmg {k} Jx Dx\r\n"
     b"mg {k} P L I\r\nmg {k} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n"
     b"mg {k} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\nmg {k} " + O33 + b"\r\n"
     b"md {K251}\r\nma {K251}\r\nme {K251}\r\nme {k} c d\r\nmx\r\nmgg {k}\r\nmn a b\r\n")
case("meta_with_text", b"set {k} 5 0 2\r\nhi\r\nmg {k} v f c\r\ngets {k}\r\nms {k} 1 F9\r\n5\r\n"
     b"incr {k} 10\r\nmg {k} v f\r\nma {k} v\r\nappend {k} 0 0 1\r\nx\r\nmg {k} v\r\n"
     b"md {k} I\r\nget {k}\r\ndelete {k}\r\nmg {k}\r\n")
case("slabs_admin", b"slabs\r\nslabs automove\r\nslabs automove 2\r\nslabs automove abc\r\n"
     b"slabs automove -1\r\nslabs automove 1 noreply\r\nslabs automove 1 2 3\r\n"
     b"slabs automove ratio\r\nslabs automove ratio 0.5\r\nslabs automove ratio abc\r\n"
     b"slabs automove 9 noreply\r\nslabs bogus 1\r\nslabs reassign\r\nslabs reassign 1 2 3\r\n"
     b"slabs reassign a b\r\nslabs reassign 1 1\r\nslabs reassign -2 1\r\n"
     b"slabs reassign 1 -5\r\nslabs reassign 1 2 noreply\r\nslabs automove 1\r\n")

# ---------------------------------------------------------------- TIMED (keep last)
TIMED = []


def timed(name, *steps):
    case(name, *steps)
    TIMED.append(name)


timed("expiry", b"set {k1} 0 1 1\r\na\r\nset {k2} 0 3 1\r\nb\r\nset {k3} 0 2 1\r\nc\r\n"
      b"touch {k3} 100\r\nset {k4} 0 2 1\r\nd\r\ngat 100 {k4}\r\nset {k5} 0 100 1\r\ne\r\n"
      b"touch {k5} 1\r\nset {k6} 0 100 1\r\nf\r\ngats 1 {k6}\r\nget {k2}\r\n",
      Sleep(2.6), b"get {k1} {k3} {k4} {k5} {k6}\r\n")
timed("flush_delayed", b"set {k} 0 0 1\r\nx\r\nflush_all 3\r\nget {k}\r\nset {k1} 0 0 1\r\ny\r\n",
      Sleep(4.2), b"get {k} {k1}\r\nset {k2} 0 0 1\r\nz\r\nget {k2}\r\n")
