"""scripts/check-layout catches what it must: a tree with one planted violation of each rule
fails with each one named (file and line), the same tree without them passes."""

import os
import subprocess
import sys
import tempfile

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts",
                       "check-layout")

CLEAN = {
    "store/store.cc": '#include "store/store.hh"\n#include "common/log.hh"\n#include <atomic>\n',
    "dataplane/server.cc": '#include "drivers/driver.hh"\n#include "store/store.hh"\n',
    "dataplane/settings.hh": '#include "drivers/dpdk/options.hh"\n',
    "dataplane/daemon/cachetd.cc": '#include "drivers/uring/uring_driver.hh"\n'
                                   '#include "drivers/dpdk/dpdk_driver.hh"\n',
    "drivers/dpdk/lcore.cc": "#include <rte_mbuf.h>\n#include \"drivers/dpdk/impl.hh\"\n",
    "perf/loadgen/dpdk_transport.cc": "#include <rte_ethdev.h>\n#include \"drivers/dpdk/port.hh\"\n",
    "tests/unit/drivers/uring/uring_driver_test.cc": '#include "drivers/uring/uring_driver.hh"\n',
    "tests/fuzz/fuzz_packet.cc": '#include "drivers/dpdk/packet.hh"\n',
}
# path, line, what the checker must name
PLANTED = [
    ("dataplane/executor.cc", "#include <rte_mbuf.h>\n", "DPDK headers only"),
    ("store/index.cc", '#include "dataplane/server.hh"\n', "store/ knows no protocol"),
    ("store/arena.cc", "#include <sys/socket.h>\n", "store/ includes no socket"),
    ("control/launch.cc", '#include "drivers/uring/worker.hh"\n', "driver implementations"),
    ("dataplane/stats.cc", '#include "drivers/dpdk/impl.hh"\n', "driver implementations"),
    ("tests/unit/drivers/uring_driver_test.cc", '#include "drivers/uring/uring_driver.hh"\n',
     "driver implementations"),
    ("drivers/uring/worker.cc", '#include "dataplane/server.hh"\n', "drivers/ sit below"),
    ("dataplane/server.cc", '#include "perf/loadgen/worker.hh"\n', "never uses perf/"),
    ("common/log.cc", '#include "store/store.hh"\n', "common/ includes common/ only"),
]


def write(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "a") as f:
            f.write(text)


def run(root):
    p = subprocess.run([sys.executable, CHECKER, "--root", root], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout


def main():
    failures = []
    with tempfile.TemporaryDirectory() as clean, tempfile.TemporaryDirectory() as bad:
        write(clean, CLEAN)
        rc, out = run(clean)
        if rc != 0:
            failures.append("a clean tree fails:\n" + out)
        write(bad, CLEAN)
        for path, line, _ in PLANTED:
            write(bad, {path: "// planted\n" + line})
        rc, out = run(bad)
        if rc != 1:
            failures.append("a tree with planted violations exits %d, not 1" % rc)
        for path, line, rule in PLANTED:
            hit = [ln for ln in out.splitlines() if ln.startswith(path + ":")]
            if not any(rule in ln for ln in hit):
                failures.append("not caught: %s (%s): %s" % (path, line.strip(), rule))
        count = out.count(" -- ")
        if count != len(PLANTED):
            failures.append("%d violations reported for %d planted:\n%s" % (count, len(PLANTED), out))
    for f in failures:
        print("FAIL " + f)
    print("check_layout: %d planted violations, %d failures" % (len(PLANTED), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
