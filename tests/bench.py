#!/usr/bin/env python3
"""make bench: firstboot's own cost, as ratios against baselines measured
in the same run on the same machine (no absolute thresholds).

  1. provision: `firstboot run` of a bundle with N trivial modules, against
     the baseline of running the same N install.sh scripts one after the
     other from a shell loop. The difference per module is the agent's
     overhead per module (verification, unpacking, env, logging, state).
  2. rerun: `firstboot run` on an instance where everything is done (what
     every later boot costs), against the baseline of exec'ing /bin/true,
     and against `firstboot --help` (the cost of loading the binary and its
     shared libraries, libcurl's dependencies most of it).
  3. memory: peak RSS of firstboot run, against the peak RSS of /bin/sh
     running the same scripts.

Each timing is the median of several runs. Usage: bench.py FIRSTBOOT
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FIRSTBOOT = sys.argv[1]
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_MODULES = 20
REPEAT = 7


def run(argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_ms(fn, setup=None):
    xs = []
    for _ in range(REPEAT):
        if setup:
            setup()
        xs.append(timed(fn) * 1000)
    return statistics.median(xs)


def peak_rss_kb(argv):
    """Peak RSS of one child run (ru_maxrss of a fresh waited-for child)."""
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execvp(argv[0], argv)
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("bench: %s failed" % argv[0])
    return ru.ru_maxrss


def new_root(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root + "/etc/firstboot")
    with open(root + "/etc/os-release", "w") as f:
        f.write('ID=debian\nVERSION_ID="12"\n')
    with open(root + "/etc/firstboot/firstboot.conf", "w") as f:
        f.write("retry_backoff_ms: 10\n")


def main():
    work = tempfile.mkdtemp(prefix="firstboot-bench.")
    try:
        bundle = work + "/bundle"
        os.makedirs(bundle)
        ids = ["m%02d" % i for i in range(N_MODULES)]
        with open(bundle + "/bundle.yaml", "w") as f:
            f.write("version: 1\nname: bench\nmodules:\n")
            for i, m in enumerate(ids):
                f.write("  - id: %s\n" % m)
        scripts = []
        for i, m in enumerate(ids):
            d = "%s/modules/%s" % (bundle, m)
            os.makedirs(d)
            with open(d + "/manifest.yml", "w") as f:
                f.write('id: %s\nname: %s\nversion: "1"\n' % (m, m))
                if i:
                    f.write("after: [%s]\n" % ids[i - 1])
            with open(d + "/install.sh", "w") as f:
                f.write("#!/bin/sh\necho %s configured\n" % m)
            os.chmod(d + "/install.sh", 0o755)
            scripts.append(d + "/install.sh")
        ud = work + "/user-data"
        run([TOP + "/tests/e2e/mkbundle.sh", bundle, ud])
        root = work + "/root"

        def provision():
            run([FIRSTBOOT, "run", "--root", root, "--user-data", ud, "--instance-id", "i-1"])

        def baseline_scripts():
            run(["/bin/sh", "-c", 'for s in "$@"; do "$s"; done', "sh"] + scripts)

        fb = median_ms(provision, setup=lambda: new_root(root))
        base = median_ms(baseline_scripts)
        new_root(root)
        provision()
        rerun = median_ms(provision)
        true = median_ms(lambda: run(["/bin/true"]))
        start = median_ms(lambda: run([FIRSTBOOT, "--help"]))
        new_root(root)
        rss_fb = peak_rss_kb([FIRSTBOOT, "run", "--root", root, "--user-data", ud,
                              "--instance-id", "i-1"])
        rss_sh = peak_rss_kb(["/bin/sh", "-c", 'for s in "$@"; do "$s"; done', "sh"] + scripts)

        print("bench: median of %d runs, %d modules, on %s" % (REPEAT, N_MODULES, os.uname().machine))
        print("provision  firstboot run %8.1f ms   scripts from sh %8.1f ms   ratio %5.2f   "
              "overhead %.2f ms/module" % (fb, base, fb / base, (fb - base) / N_MODULES))
        print("rerun      firstboot run %8.1f ms   /bin/true       %8.1f ms   ratio %5.2f"
              % (rerun, true, rerun / true))
        print("rerun      firstboot run %8.1f ms   firstboot --help %7.1f ms   ratio %5.2f"
              % (rerun, start, rerun / start))
        print("memory     firstboot run %8d KB   scripts from sh %8d KB   ratio %5.2f"
              % (rss_fb, rss_sh, rss_fb / rss_sh))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
