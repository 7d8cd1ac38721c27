"""Network namespaces for the DPDK tests: create a pair, move a tap between them, enter one
from this process (setns), and delete them all at exit. Only namespaces this process made are
touched; nothing here is reachable from the host's own network.
"""

import atexit
import ctypes
import os
import subprocess
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_made = []


def ip(*args, ns=None, check=True):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def available():
    """Root, /dev/net/tun and the ip tool: what the tap tests need (else they skip)."""
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and \
        subprocess.run(["ip", "-V"], capture_output=True).returncode == 0


def make(name):
    ip("netns", "add", name)
    _made.append(name)
    ip("link", "set", "lo", "up", ns=name)
    return name


def delete_all():
    while _made:
        ip("netns", "del", _made.pop(), check=False)


atexit.register(delete_all)


def wait_link(ns, ifname, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ip("link", "show", ifname, ns=ns, check=False):
            return True
        time.sleep(0.1)
    return False


def mac_of(ns, ifname):
    out = ip("link", "show", ifname, ns=ns)
    parts = out.split()
    return bytes.fromhex(parts[parts.index("link/ether") + 1].replace(":", ""))


class Inside:
    """Context manager: this process's network namespace is `ns` inside the block (sockets made
    inside keep living there after it)."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/var/run/netns/%s" % self.ns, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns %s" % self.ns)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        _libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)
