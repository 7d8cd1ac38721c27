"""twemproxy's ketama over md5 (nc_ketama.c, hash: md5), as a test oracle: which backend a key
belongs to. Backends are named (the YAML's "host:port:weight name"); each gets 160 points at
equal weight, from md5("<name>-<i>") cut in four little-endian words."""

import bisect
import hashlib


def _words(data):
    d = hashlib.md5(data).digest()
    return [int.from_bytes(d[4 * i:4 * i + 4], "little") for i in range(4)]


class Ketama:
    def __init__(self, names):
        points = []
        for index, name in enumerate(names):
            for i in range(160 // 4):
                for value in _words(b"%s-%d" % (name.encode(), i)):
                    points.append((value, index))
        points.sort()
        self.values = [v for v, _ in points]
        self.owners = [o for _, o in points]

    def owner(self, key):
        """Index (into the names) of the backend that owns key."""
        h = _words(key)[0]
        at = bisect.bisect_left(self.values, h)
        return self.owners[at % len(self.values)]
