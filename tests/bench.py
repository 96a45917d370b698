#!/usr/bin/env python3
"""make bench: firstboot's own cost, as ratios against baselines measured
in the same run on the same machine (no absolute thresholds).

  1. provision: `firstboot run` of a bundle with N trivial modules, against
     the baseline of running the same N install.sh scripts one after the
     other from a shell loop, for 10 and for 30 modules. The slope of the
     difference is the agent's overhead per module (unpacking, env,
     logging, done-mark, status); what is left is its overhead per run.
  2. rerun: `firstboot run` on an instance where everything is done (what
     every later boot costs), against the baseline of exec'ing /bin/true,
     and against `firstboot --help` (the cost of loading the binary and its
     shared libraries).
  3. memory: peak RSS of firstboot run, the agent alone (its VmHWM as
     it exits, read by tests/tools/peak-rss), against the peak RSS of
     /bin/sh running the same scripts; and of a run of the same modules
     in a bundle whose Ed25519 signature is checked. Then both runs as
     GNU time's %M sees them, which is the largest of the agent and of
     every module it waited for: that figure hides the agent behind a
     module bigger than it, so the agent's own is the one to watch.
  4. imagegen: rendering the test site (tests/cases/imagegen), first with
     no state (secrets and certificates made) and then again (reused),
     against `cp -r` of the same output; and a fleet of 1000 hosts
     (distinct hostnames, secrets, certificates), new and again, on the
     disk and on a tmpfs (see bench_fleet).
  5. parse: `firstboot validate` of a bundle.yaml whose checksums mapping
     has 10,000 and then 80,000 keys (and one duplicate at the end, so
     the only message is that), less the same for a bundle.yaml of a few
     lines (process start); the ratio of the two is near 8 when reading
     and checking a mapping is linear (64 if quadratic).
  6. jobs: `firstboot agent` against a real redis-server on a loopback
     port: N_JOBS signed jobs of a trivial module pushed at once, the time
     until every result is set, against the baseline of running the same
     script N_JOBS times from a shell loop; the difference per job is the
     agent's cost (verify, lock, replay record, manifest, log, result),
     and the mean queue_wait_ms of the results its pickup-to-start time.

Each timing is the median of several runs. Usage: bench.py FIRSTBOOT IMAGEGEN PEAK_RSS
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
IMAGEGEN = sys.argv[2]
PEAK_RSS = sys.argv[3]
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_MODULES = 30
N_SMALL = 10
REPEAT = 7


def run(argv, **kw):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_ms(fn, setup=None, repeat=REPEAT):
    xs = []
    for _ in range(repeat):
        if setup:
            setup()
        xs.append(timed(fn) * 1000)
    return statistics.median(xs)


def peak_rss_kb(argv):
    """Peak RSS of one run, by GNU time (a fork of Python would count
    Python's own pages): wait4()'s ru_maxrss, the largest of the process
    and of the descendants it waited for."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(p.stderr.strip().splitlines()[-1])


def own_peak_rss_kb(argv):
    """Peak RSS of the process alone, not its children: its VmHWM as it
    exits (tests/tools/peak-rss, over ptrace). None, and why on stderr,
    where it cannot trace (a seccomp profile that refuses ptrace)."""
    p = subprocess.run([PEAK_RSS] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode == 125:
        print("bench: the agent's own peak RSS not measured: %s" % p.stderr.strip(),
              file=sys.stderr)
        return None
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, argv, stderr=p.stderr)
    return int(p.stderr.strip().splitlines()[-1])


def kb(n):
    return "%8s KB" % ("?" if n is None else n)


def ratio(a, b):
    return "    ?" if a is None else "%5.2f" % (a / b)


def new_root(root):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root + "/etc/firstboot")
    with open(root + "/etc/os-release", "w") as f:
        f.write('ID=debian\nVERSION_ID="12"\n')
    with open(root + "/etc/firstboot/firstboot.conf", "w") as f:
        f.write("retry_backoff_ms: 10\n")


def make_bundle(work, n, key=None):
    """A bundle of n trivial modules, each after the one before, signed
    with key when given; returns the user-data and the modules' scripts."""
    bundle = "%s/bundle-%d%s" % (work, n, "-signed" if key else "")
    os.makedirs(bundle)
    ids = ["m%02d" % i for i in range(n)]
    with open(bundle + "/bundle.yaml", "w") as f:
        f.write("version: 1\nname: bench\nmodules:\n")
        for m in ids:
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
    ud = "%s/user-data-%d%s" % (work, n, "-signed" if key else "")
    run([TOP + "/tests/e2e/mkbundle.sh", bundle, ud] + ([key] if key else []))
    return ud, scripts


def signed_root(work, root):
    """A root that requires signed bundles, and the key to sign them
    (made once: a root made again trusts the same key)."""
    key = work + "/signing.key"
    if not os.path.exists(key):
        run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key])
    new_root(root)
    os.makedirs(root + "/etc/firstboot/keys")
    run(["openssl", "pkey", "-in", key, "-pubout", "-out", root + "/etc/firstboot/keys/k.pub"])
    with open(root + "/etc/firstboot/firstboot.conf", "a") as f:
        f.write("require_signature: true\n")
    return key


def main():
    work = tempfile.mkdtemp(prefix="firstboot-bench.")
    try:
        ud, scripts = make_bundle(work, N_MODULES)
        ud_small, scripts_small = make_bundle(work, N_SMALL)
        root = work + "/root"

        def provision(u=ud, r=root):
            run([FIRSTBOOT, "run", "--root", r, "--user-data", u, "--instance-id", "i-1"])

        def baseline_scripts(sc=scripts):
            run(["/bin/sh", "-c", 'for s in "$@"; do "$s"; done', "sh"] + sc)

        base = median_ms(baseline_scripts)
        base_small = median_ms(lambda: baseline_scripts(scripts_small))

        def overhead(r, repeat=REPEAT):
            """The agent's cost per module is the slope between the two
            sizes; what is left is its cost per run (start, user-data,
            marker, status, fsyncs), which a rerun also pays."""
            fb = median_ms(lambda: provision(ud, r), setup=lambda: new_root(r), repeat=repeat)
            fb_small = median_ms(lambda: provision(ud_small, r), setup=lambda: new_root(r),
                                 repeat=repeat)
            per_module = ((fb - base) - (fb_small - base_small)) / (N_MODULES - N_SMALL)
            return fb, per_module, (fb_small - base_small) - per_module * N_SMALL

        fb, per_module, per_run = overhead(root)
        # The same on a tmpfs: each module's files (its two unpacked
        # members, done-mark and log) cost what the disk takes to create a
        # file; on a tmpfs what is left is the agent's own work.
        shm = None
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            shm = tempfile.mkdtemp(prefix="firstboot-bench.", dir="/dev/shm")
            try:
                # Runs of a few ms: more of them for a steady slope.
                _, shm_module, shm_run = overhead(shm + "/root", repeat=4 * REPEAT)
            finally:
                shutil.rmtree(shm, ignore_errors=True)
        new_root(root)
        provision()
        rerun = median_ms(provision)
        true = median_ms(lambda: run(["/bin/true"]))
        start = median_ms(lambda: run([FIRSTBOOT, "--help"]))
        fb_argv = [FIRSTBOOT, "run", "--root", root, "--user-data", ud, "--instance-id", "i-1"]
        new_root(root)
        own_fb = own_peak_rss_kb(fb_argv)
        new_root(root)
        rss_fb = peak_rss_kb(fb_argv)
        rss_sh = peak_rss_kb(["/bin/sh", "-c", 'for s in "$@"; do "$s"; done', "sh"] + scripts)
        # A signed bundle: libsodium checks its Ed25519 signature.
        sroot = work + "/signed-root"
        key = signed_root(work, sroot)
        sud, _ = make_bundle(work, N_MODULES, key)
        signed_argv = [FIRSTBOOT, "run", "--root", sroot, "--user-data", sud, "--instance-id", "i-1"]
        own_signed = own_peak_rss_kb(signed_argv)
        signed_root(work, sroot)
        rss_signed = peak_rss_kb(signed_argv)

        print("bench: median of %d runs, %d modules, on %s" % (REPEAT, N_MODULES, os.uname().machine))
        print("provision  firstboot run %8.1f ms   scripts from sh %8.1f ms   ratio %5.2f"
              % (fb, base, fb / base))
        print("overhead   %.2f ms per module (slope from %d to %d modules), %.1f ms per run"
              % (per_module, N_SMALL, N_MODULES, per_run))
        if shm:
            print("overhead   %.2f ms per module, %.1f ms per run, with the root on a tmpfs"
                  % (shm_module, shm_run))
        print("rerun      firstboot run %8.1f ms   /bin/true       %8.1f ms   ratio %5.2f"
              % (rerun, true, rerun / true))
        print("rerun      firstboot run %8.1f ms   firstboot --help %7.1f ms   ratio %5.2f"
              % (rerun, start, rerun / start))
        print("memory     firstboot run %s   scripts from sh %8d KB   ratio %s   the agent alone"
              % (kb(own_fb), rss_sh, ratio(own_fb, rss_sh)))
        print("memory     signed bundle %s   scripts from sh %8d KB   ratio %s   the agent alone"
              % (kb(own_signed), rss_sh, ratio(own_signed, rss_sh)))
        print("memory     firstboot run %s   signed bundle   %8d KB   GNU time: the agent or a module"
              % (kb(rss_fb), rss_signed))
        bench_imagegen(work)
        bench_parse(work)
        bench_jobs(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


N_JOBS = 200


def bench_jobs(work):
    import hashlib
    import hmac
    import json
    import socket
    import uuid
    if not shutil.which("redis-server"):
        print("jobs       skipped: no redis-server")
        return
    root = work + "/jobs-root"
    new_root(root)
    mod = root + "/usr/lib/firstboot/modules/trivial"
    os.makedirs(mod)
    os.makedirs(root + "/etc/firstboot", exist_ok=True)
    with open(mod + "/manifest.yml", "w") as f:
        f.write('id: trivial\nname: trivial\nversion: "1.0"\n')
    with open(mod + "/install.sh", "w") as f:
        f.write("#!/bin/sh\necho done\n")
    os.chmod(mod + "/install.sh", 0o755)
    secret = b"bench-secret-0123456789abcdef"
    fd = os.open(root + "/etc/firstboot/jobs.secret", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, secret)
    os.close(fd)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    os.makedirs(work + "/redis")
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", work + "/redis"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = None
    try:
        conn = None
        for _ in range(100):
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        with open(root + "/etc/firstboot/firstboot.conf", "w") as f:
            f.write("jobs:\n  redis_url: redis://127.0.0.1:%d\n  agent_id: bench\n" % port)
        log = open(work + "/agent.log", "w")
        agent = subprocess.Popen([FIRSTBOOT, "agent", "--root", root], stdout=log, stderr=log)

        def resp(*args):
            b = b"*%d\r\n" % len(args)
            for a in args:
                a = a.encode()
                b += b"$%d\r\n%s\r\n" % (len(a), a)
            return b

        rf = conn.makefile("rb")

        def reply():
            line = rf.readline()
            if line[:1] == b"$":
                n = int(line[1:])
                return None if n < 0 else rf.read(n + 2)[:-2]
            if line[:1] == b"*":
                return [reply() for _ in range(int(line[1:]))]
            return line

        ids, out = [], b""
        for _ in range(N_JOBS):
            jid = str(uuid.uuid4())
            p = json.dumps({"job_id": jid, "agent_id": "bench", "app_id": "trivial",
                            "issued_at": int(time.time())})
            sig = "sha256=" + hmac.new(secret, p.encode(), hashlib.sha256).hexdigest()
            out += resp("LPUSH", "agent:bench:jobs", json.dumps({"payload": p, "signature": sig}))
            ids.append(jid)
        time.sleep(1)  # the agent is up and blocked in BLMOVE
        t0 = time.monotonic()
        conn.sendall(out)
        for _ in ids:
            reply()
        last = "job:%s:result" % ids[-1]
        while True:
            conn.sendall(resp("GET", last))
            if reply() is not None:
                break
            time.sleep(0.002)
        total = (time.monotonic() - t0) * 1000
        conn.sendall(resp("MGET", *["job:%s:result" % i for i in ids]))
        results = [json.loads(r) for r in reply() if r]
        waits = [r["queue_wait_ms"] for r in results if r.get("status") == "succeeded"]
        base = median_ms(lambda: run(["/bin/sh", "-c", 'i=0; while [ $i -lt %d ]; do "$0"; '
                                      'i=$((i+1)); done' % N_JOBS, mod + "/install.sh"]),
                         repeat=3)
        print("jobs       %d jobs in %.0f ms (%.0f jobs/s), the script from sh %.0f ms: "
              "%.2f ms added per job; pickup to start %.2f ms (mean), %d succeeded"
              % (N_JOBS, total, N_JOBS * 1000 / total, base, (total - base) / N_JOBS,
                 statistics.mean(waits) if waits else -1, len(waits)))
    finally:
        if agent:
            agent.terminate()
            agent.wait(timeout=30)
        redis.terminate()
        redis.wait(timeout=30)


def bench_parse(work):
    def bundle(n):
        d = "%s/parse-%d" % (work, n)
        os.makedirs(d, exist_ok=True)
        with open(d + "/bundle.yaml", "w") as f:
            f.write("version: 1\nname: big\nchecksums:\n")
            f.writelines("  k%07d: 1\n" % i for i in range(n))
            f.write("  k0000000: 1\n")
        return d

    def validate(d):
        subprocess.run([FIRSTBOOT, "validate", "--modules-dir", work, d],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    dirs = {n: bundle(n) for n in (1, 10000, 80000)}
    ms = {n: median_ms(lambda d=d: validate(d)) for n, d in dirs.items()}
    small, big = ms[10000] - ms[1], ms[80000] - ms[1]
    print("parse      80,000 keys %8.1f ms   10,000 keys     %8.1f ms   ratio %5.2f (8 = linear)"
          % (big, small, big / small if small > 0 else float("nan")))


def bench_imagegen(work):
    fix = TOP + "/tests/cases/imagegen"
    ig = [IMAGEGEN, "render", "--modules-dir", fix + "/modules", "--templates-dir",
          fix + "/templates", "-q"]
    with open(fix + "/site/site.yaml") as f:
        text = f.read()
    hosts = "".join("  - {hostname: host-%04d}\n" % i for i in range(1000))
    text = text.replace("hostname: test-1\n", "hosts:\n" + hosts)
    text = text.replace("  domain: test-1.example.org\n", "")
    places = [(work, "disk")]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        places.append((tempfile.mkdtemp(prefix="firstboot-bench.", dir="/dev/shm"), "tmpfs"))
    try:
        for where, what in places:
            bench_site(ig, fix, where, what)
        for where, what in places:
            bench_fleet(ig, fix, text, where, what)
    finally:
        if len(places) > 1:
            shutil.rmtree(places[1][0], ignore_errors=True)


def bench_site(ig, fix, work, where):
    """The test site, new (its secrets, CA and certificate made, and
    synced) and again, against `cp -r` of its output."""
    site, out = work + "/site", work + "/render"

    def fresh():
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(fix + "/site", site)

    cold = median_ms(lambda: run(ig + [site + "/site.yaml", "-o", out]), setup=fresh)
    warm = median_ms(lambda: run(ig + [site + "/site.yaml", "-o", out]))
    cp = median_ms(lambda: run(["cp", "-r", out, work + "/copy"]),
                   setup=lambda: shutil.rmtree(work + "/copy", ignore_errors=True))
    print("imagegen   %-21s new %6.1f ms, again %6.1f ms   cp -r of it %6.1f ms   "
          "ratio %5.2f (again)" % ("site (%s)" % where, cold, warm, cp, warm / cp))


def bench_fleet(ig, fix, text, work, where):
    """A fleet of 1000 hosts in work: new (no state: every secret, key and
    certificate made) with a process per CPU and with one, and again (all
    reused, nothing written); `cp -r` of the output the baseline for again,
    `cp -r` and a sync of its file system the baseline for new (imagegen
    syncs what it made before it says it is done)."""
    fleet, fout = work + "/fleet", work + "/fleet-out"

    def fresh():
        for d in (fleet, fout, work + "/fcopy"):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(fix + "/site", fleet)
        with open(fleet + "/site.yaml", "w") as f:
            f.write(text)
        run(["sync", "-f", work])

    render = ig + [fleet + "/site.yaml", "-o", fout]
    new = {}
    for jobs in ("1", str(os.cpu_count() or 1)):
        new[jobs] = median_ms(lambda: run(render + ["-j", jobs]), setup=fresh, repeat=3)
    again = median_ms(lambda: run(render), repeat=3)
    cp = median_ms(lambda: run(["cp", "-r", fout, work + "/fcopy"]), repeat=3,
                   setup=lambda: shutil.rmtree(work + "/fcopy", ignore_errors=True))
    cps = median_ms(lambda: run(["sh", "-c", 'cp -r "$1" "$2" && sync -f "$2"', "-", fout,
                                 work + "/fcopy"]), repeat=3,
                    setup=lambda: shutil.rmtree(work + "/fcopy", ignore_errors=True))
    best = min(new.values())
    label = "fleet of 1000 (%s)" % where
    print("imagegen   %-21s new %6.0f ms (-j 1), %6.0f ms (-j %s)   cp -r and sync %6.0f ms   "
          "ratio %5.2f" % (label, new["1"], new[str(os.cpu_count() or 1)], os.cpu_count() or 1,
                           cps, best / cps))
    print("imagegen   %-21s again %6.0f ms   cp -r of it %6.0f ms   ratio %5.2f"
          % (label, again, cp, again / cp))

if __name__ == "__main__":
    main()
