"""Reserve 2 MB hugepages and mount a private hugetlbfs for a test, then give them back.
Only what this process reserved is released; without root or free memory it reports None."""

import os
import subprocess
import tempfile

NR = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
_state = {}


def reserve(pages):
    """Adds `pages` 2 MB pages to the pool and mounts a hugetlbfs; returns its path or None."""
    if os.geteuid() != 0 or not os.path.exists(NR):
        return None
    before = int(open(NR).read())
    try:
        with open(NR, "w") as f:
            f.write(str(before + pages))
    except OSError:
        return None
    now = int(open(NR).read())
    _state["added"] = now - before
    if now - before < pages:
        release()
        return None
    d = tempfile.mkdtemp(prefix="cachet-huge-")
    r = subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        release()
        return None
    _state["dir"] = d
    return d


def release():
    d = _state.pop("dir", None)
    if d:
        subprocess.run(["umount", d], capture_output=True)
        os.rmdir(d)
    added = _state.pop("added", 0)
    if added:
        cur = int(open(NR).read())
        with open(NR, "w") as f:
            f.write(str(max(0, cur - added)))
