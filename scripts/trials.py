#!/usr/bin/env python3
"""Issue 23's slow trials, seeded, with a table of what survived (BENCHMARKS.md,
"Issue 23: trials"). The fast ones are tests/integration/trials.rs, writers.rs and
faults.rs.

    scripts/trials.py [--makescope target/release/makescope] [--seed 23]
                      [--signal-runs 20] [--kill-runs 4] [--reader-builds 30]
                      [--scale 100000] [--scale-dir DIR] [--nice N] [--only NAME]

Trials (NAME):
  signals  SIGINT/SIGTERM/SIGHUP at a random moment of a 2,000-command recursive -j4
           build, to makescope's pid alone or to its process group (as a terminal's
           Ctrl-C): makescope ends as plain make does (the same signal), no process of
           the build is left, the record opens and says interrupted, every target on
           disk has its command recorded ok, no command is left `running`; the next
           `makescope make` completes and `log --build` shows both builds.
  kills    kill -9 of makescope, of the top make, of one shim, at a random moment:
           everything of the build is gone within 5 s, the record opens, a killed
           recorder's build is reported cut off by the next run.
  writers  two `makescope make` at once into one --db while `log --json` reads it
           every 0.2 s: both complete as separate builds, every read is one document.
  readers  `log --json` in a loop from the start of each of 30 builds into a new record:
           every read is one document or says there is no record or no build yet.
  targets  10,000 targets in one makefile: all recorded.
  scale    a recursive build of N commands (default 100,000), each reading 10 files,
           at -j2: recorded completely; makescope's peak RSS; the record's size; time
           and peak RSS of log, log --json, show, show --json --files, targets, stats,
           lint, rebuild --dry-run, tests. --scale-dir keeps the project and its record;
           run again with it to time the queries only.
"""
import argparse, json, os, random, resource, shutil, signal, sqlite3, subprocess, sys
import tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS") and not k.startswith("MAKESCOPE_")}
ENV["NO_COLOR"] = "1"
ROWS = []


def row(trial, runs, recorded, lost, hangs, notes):
    ROWS.append((trial, runs, recorded, lost, hangs, notes))
    print(f"  -> {trial}: runs {runs}, recorded {recorded}, lost {lost}, hangs {hangs}; {notes}",
          flush=True)


def project(root, subdirs, per_dir, inputs=10, pause=None):
    """A recursive build: `subdirs` directories of `per_dir` targets, each `cat`ing
    `inputs` files into a temporary file renamed onto the target (a target exists only
    when its command finished)."""
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    for i in range(inputs):
        with open(os.path.join(root, "in", f"{i}"), "w") as f:
            f.write(f"input {i}\n")
    subs = [f"d{i:03d}" for i in range(subdirs)]
    with open(os.path.join(root, "Makefile"), "w") as f:
        f.write(f"SUBS := {' '.join(subs)}\nall: $(SUBS)\n$(SUBS):\n\t@$(MAKE) -C $@\n"
                ".PHONY: all $(SUBS)\n")
    files = " ".join(f"../in/{i}" for i in range(inputs))
    sleep = f"; sleep {pause}" if pause else ""
    for s in subs:
        os.makedirs(os.path.join(root, s), exist_ok=True)
        with open(os.path.join(root, s, "Makefile"), "w") as f:
            f.write("all: " + " ".join(f"t{j}" for j in range(per_dir)) + "\n")
            f.write(f"t%:\n\t@cat {files} > $@.tmp{sleep}; mv $@.tmp $@\n")
    return subs


def targets_on_disk(root):
    out = []
    for d in sorted(os.listdir(root)):
        p = os.path.join(root, d)
        if d.startswith("d") and os.path.isdir(p):
            out += [(os.path.join(p, t)) for t in os.listdir(p) if t.startswith("t") and ".tmp" not in t]
    return out


def build_processes(root):
    """Pids whose working directory is in `root` (the build's processes)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            pids.append(int(pid))
    return pids


def gone_within(root, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not build_processes(root):
            return True
        time.sleep(0.05)
    return not build_processes(root)


def wait(proc, seconds):
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def start(cmd, cwd, group=False):
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=group)


def record(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    return c


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def trial_signals(a, rng, work):
    # How long a whole build takes, and how plain make ends by each signal.
    src = os.path.join(work, "signals-src")
    project(src, 20, 100, inputs=3, pause=0.005)
    full = os.path.join(work, "full")
    shutil.copytree(src, full)
    t = time.monotonic()
    subprocess.run([a.makescope, "make", "-q", "-j4"], cwd=full, env=ENV, check=True,
                   stdout=subprocess.DEVNULL)
    duration = time.monotonic() - t
    print(f"signals: a whole build takes {duration:.1f} s", flush=True)
    plain = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        d = os.path.join(work, f"plain-{sig.name}")
        shutil.copytree(src, d)
        t = time.monotonic()
        subprocess.run(["make", "-s", "-j4"], cwd=d, env=ENV, check=True, stdout=subprocess.DEVNULL)
        plain_duration = time.monotonic() - t
        subprocess.run(["git", "clean", "-qfdx"], cwd=d, capture_output=True)
        shutil.rmtree(d)
        shutil.copytree(src, d)
        p = start(["make", "-s", "-j4"], d, group=True)
        time.sleep(plain_duration / 3)
        # To the group: make passes SIGINT on to no job (the terminal sent it to them
        # all); makescope does that for it when it alone gets SIGINT (README).
        os.killpg(p.pid, sig)
        wait(p, 30)
        plain[sig] = p.returncode
        gone_within(d, 10)
    recorded = lost = hangs = failures = 0
    notes = []
    opens = []
    for run in range(a.signal_runs):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
        to_group = rng.random() < 0.5
        at = rng.uniform(0.1, 0.9) * duration
        d = os.path.join(work, f"signals-{run}")
        shutil.copytree(src, d)
        p = start([a.makescope, "make", "-q", "-j4"], d, group=True)
        time.sleep(at)
        if to_group:
            os.killpg(p.pid, sig)
        else:
            os.kill(p.pid, sig)
        problems = []
        finished_before = p.poll() == 0
        if not wait(p, 30):
            hangs += 1
            problems.append("hang")
            p.kill()
            p.wait()
        if finished_before:
            notes.append(f"run {run}: the build had ended before the signal")
        elif p.returncode != plain[sig]:
            problems.append(f"ended {p.returncode}, plain make {plain[sig]}")
        if not gone_within(d, 5):
            problems.append(f"left {build_processes(d)}")
        t = time.monotonic()
        log = subprocess.run([a.makescope, "log", "--json"], cwd=d, env=ENV, capture_output=True)
        opens.append(time.monotonic() - t)
        db = record(os.path.join(d, ".makescope/db.sqlite"))
        state = db.execute("SELECT state FROM build WHERE id = 1").fetchone()[0]
        if state != "interrupted" and not finished_before:
            problems.append(f"build {state}")
        ended = {r[0]: r[1] for r in db.execute(
            "SELECT directory || '/' || target, state FROM command WHERE build_id = 1")}
        running = db.execute("SELECT count(*) FROM command WHERE state = 'running'").fetchone()[0]
        if running:
            problems.append(f"{running} commands left running")
        on_disk = targets_on_disk(d)
        # A target on disk: its command finished its work. Recorded with how it ended
        # (`killed` when the signal came between its last step and its exit), or lost.
        missing = [t for t in on_disk if ended.get(t) not in ("ok", "failed", "killed")]
        late = [t for t in on_disk if ended.get(t) == "killed"]
        recorded += len(on_disk) - len(missing)
        lost += len(missing)
        if missing:
            problems.append(f"{len(missing)} finished commands lost: "
                            + ", ".join(f"{t} {ended.get(t)}" for t in missing[:3]))
        if late:
            notes.append(f"run {run}: {len(late)} killed after their last step")
        again = subprocess.run([a.makescope, "make", "-q", "-j4"], cwd=d, env=ENV,
                               capture_output=True, timeout=300)
        both = [subprocess.run([a.makescope, "log", "--build", str(b)], cwd=d, env=ENV,
                               capture_output=True).returncode for b in (1, 2)]
        if again.returncode != 0 or both != [0, 0] or log.returncode != 0:
            problems.append(f"next build {again.returncode}, log {both}")
        if problems:
            failures += 1
            notes.append(f"run {run} ({sig.name} {'group' if to_group else 'pid'} at {at:.1f} s): "
                         + "; ".join(problems))
        print(f"signals run {run}: {sig.name} to {'group' if to_group else 'pid'} at {at:.1f} s: "
              f"{len(on_disk)} done, {'; '.join(problems) or 'ok'}", flush=True)
        shutil.rmtree(d, ignore_errors=True)
    row("1 signals (2,000 commands, -j4)", a.signal_runs, recorded, lost, hangs,
        f"{failures} runs with a problem; log after the signal {max(opens):.2f} s at most"
        + ("; " + " | ".join(notes) if notes else ""))


def trial_kills(a, rng, work):
    src = os.path.join(work, "kills-src")
    project(src, 20, 100, inputs=3, pause=0.005)
    hangs = failures = 0
    notes, opens = [], []
    runs = 0
    for victim in ("makescope", "make", "shim"):
        for run in range(a.kill_runs):
            runs += 1
            d = os.path.join(work, f"kill-{victim}-{run}")
            shutil.copytree(src, d)
            p = start([a.makescope, "make", "-q", "-j4"], d, group=True)
            time.sleep(rng.uniform(1.0, 4.0))
            problems = []
            if victim == "makescope":
                os.kill(p.pid, signal.SIGKILL)
            else:
                tree = descendants(p.pid)
                makes = [q for q in tree if comm(q) == "make"]
                if victim == "make":
                    pids = makes[:1]
                else:
                    # A shim: make's child (named after the shell it stands for) that
                    # runs a recipe line, not a sub-make.
                    pids = [c for m in makes for c in children(m) if comm(c) == "sh"
                            and not any(comm(g) == "make" for g in children(c))]
                if not pids:
                    problems.append(f"no {victim} found")
                else:
                    os.kill(pids[0], signal.SIGKILL)
            if not wait(p, 60):
                hangs += 1
                problems.append("makescope did not end")
                p.kill()
                p.wait()
            if not gone_within(d, 5):
                problems.append(f"left {build_processes(d)}")
            t = time.monotonic()
            log = subprocess.run([a.makescope, "log"], cwd=d, env=ENV, capture_output=True, text=True)
            opens.append(time.monotonic() - t)
            if log.returncode != 0:
                problems.append(f"log {log.returncode}: {log.stderr.strip()}")
            again = subprocess.run([a.makescope, "make", "-q", "-j4"], cwd=d, env=ENV,
                                   capture_output=True, text=True, timeout=300)
            if again.returncode != 0:
                problems.append(f"next build {again.returncode}")
            if victim == "makescope" and "cut off" not in again.stderr:
                problems.append("next run did not say cut off")
            if problems:
                failures += 1
                notes.append(f"{victim} {run}: " + "; ".join(problems))
            print(f"kill {victim} run {run}: makescope {p.returncode}; "
                  f"{'; '.join(problems) or 'ok'}", flush=True)
            shutil.rmtree(d, ignore_errors=True)
    row("2 kill -9 (makescope, make, a shim)", runs, "-", "-", hangs,
        f"{failures} runs with a problem; log after the kill {max(opens):.2f} s at most"
        + ("; " + " | ".join(notes) if notes else ""))


def trial_writers(a, rng, work):
    db = os.path.join(work, "writers.sqlite")
    dirs = []
    for w in ("one", "two"):
        d = os.path.join(work, f"writers-{w}")
        project(d, 10, 100, inputs=3)
        dirs.append(d)
    procs = [start([a.makescope, "--db", db, "make", "-q", "-j2"], d) for d in dirs]
    reads = bad = 0
    while any(p.poll() is None for p in procs):
        r = subprocess.run([a.makescope, "--db", db, "log", "--json"], cwd=work, env=ENV,
                           capture_output=True)
        reads += 1
        if r.returncode == 0:
            try:
                json.loads(r.stdout)
            except ValueError:
                bad += 1
        elif b"holds no build yet" not in r.stderr and b"no record at" not in r.stderr:
            bad += 1
        time.sleep(0.2)
    codes = [p.returncode for p in procs]
    errors = [p.stderr.read().decode(errors="replace").strip() for p in procs]
    if any(errors):
        print(f"writers: stderr {errors}", flush=True)
    c = record(db)
    builds = c.execute("SELECT b.id, b.state, count(c.id) FROM build b LEFT JOIN command c "
                       "ON c.build_id = b.id GROUP BY b.id").fetchall()
    recorded = sum(b[2] for b in builds)
    row("3 two writers, one --db, log --json every 0.2 s", 1, recorded, 2020 - recorded, 0,
        f"exit {codes}; builds {builds}; {reads} reads, {bad} not one document")


def trial_readers(a, rng, work):
    """`log --json` in a loop from the moment `makescope make` starts into a new record,
    for `--reader-builds` builds: each read is a whole document, or one line saying there
    is no record or no build yet."""
    d = os.path.join(work, "project")
    os.makedirs(d)
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write("all: a b\na b:\n\t@touch $@\n")
    reads, wrong = 0, {}
    for i in range(a.reader_builds):
        db = os.path.join(work, f"db{i}.sqlite")
        p = subprocess.Popen([a.makescope, "--db", db, "make", "-q", "-B"], cwd=d, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while p.poll() is None:
            r = subprocess.run([a.makescope, "--db", db, "log", "--json"], cwd=d, env=ENV,
                               capture_output=True)
            reads += 1
            err = r.stderr.decode(errors="replace").strip()
            if r.returncode == 0:
                try:
                    json.loads(r.stdout)
                    continue
                except ValueError:
                    err = "not one document"
            elif "holds no build yet" in err or "no record at" in err:
                continue
            key = err.replace(db, "DB")
            wrong[key] = wrong.get(key, 0) + 1
    row("3b log --json from a build's first moments (new record each)", a.reader_builds, "-", "-",
        0, f"{reads} reads, {sum(wrong.values())} wrong" + (f": {wrong}" if wrong else ""))


def trial_targets(a, rng, work):
    d = os.path.join(work, "targets")
    os.makedirs(d)
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write("all: " + " ".join(f"t{i}" for i in range(10000)) + "\nt%:\n\t@touch $@\n")
    t = time.monotonic()
    r = subprocess.run([a.makescope, "make", "-q", "-j2"], cwd=d, env=ENV, capture_output=True)
    took = time.monotonic() - t
    n = record(os.path.join(d, ".makescope/db.sqlite")).execute(
        "SELECT count(*) FROM command WHERE state = 'ok'").fetchone()[0]
    row("6 10,000 targets in one makefile", 1, n, 10000 - n, 0, f"exit {r.returncode}, {took:.1f} s")


def measured(cmd, cwd, cpu=None):
    """Run `cmd`: its time and its peak RSS (MiB); its CPU time (user + system, s) is
    appended to `cpu` (on a loaded machine the wall time mostly waits for a CPU)."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return time.monotonic() - t, usage.ru_maxrss / 1024, p.returncode


SCALE_QUERIES = [("log", ["log"]), ("log --json", ["log", "--json"]),
                 ("show", ["show", "LAST"]),
                 ("show --json --files", ["show", "LAST", "--json", "--files"]),
                 ("targets", ["targets"]), ("stats", ["stats"]), ("lint", ["lint"]),
                 ("rebuild --dry-run", ["rebuild", "--dry-run"]), ("tests", ["tests"])]


def scale_queries(a, d):
    """Time and peak RSS of each query on the record in `d`."""
    c = record(os.path.join(d, ".makescope/db.sqlite"))
    last = str(c.execute("SELECT max(id) FROM command").fetchone()[0])
    queries = []
    for name, cmd in SCALE_QUERIES:
        cpu = []
        qt, qr, qc = measured([a.makescope] + [last if w == "LAST" else w for w in cmd], d, cpu)
        queries.append(f"{name} {qt:.2f} s ({cpu[0]:.2f} s CPU) / {qr:.0f} MiB (exit {qc}, "
                       f"load {os.getloadavg()[0]:.0f})")
        print(f"scale query {queries[-1]}", flush=True)
    return queries


def trial_scale(a, rng, work):
    d = a.scale_dir or os.path.join(work, "scale")
    per_dir = 500
    if a.scale_dir and os.path.exists(os.path.join(d, ".makescope/db.sqlite")):
        # The queries again on a kept record (after a fix on the read side).
        print(f"scale: {os.path.join(os.path.abspath(__file__))} on the kept {d}", flush=True)
        took, rss, code = float("nan"), float("nan"), "kept"
    else:
        project(d, a.scale // per_dir, per_dir, inputs=10)
        cmd = [a.makescope, "make", "-q", "-j2"]
        if a.nice:
            cmd = ["nice", "-n", str(a.nice)] + cmd
        took, rss, code = measured(cmd, d)
        print(f"scale: recorded, exit {code}, {took:.0f} s, peak RSS {rss:.0f} MiB", flush=True)
    db = os.path.join(d, ".makescope/db.sqlite")
    c = record(db)
    ok = c.execute("SELECT count(*) FROM command WHERE state = 'ok'").fetchone()[0]
    reads = c.execute("SELECT coalesce(sum(count), 0) FROM access_set").fetchone()[0]
    rows_ = c.execute("SELECT count(*) FROM access").fetchone()[0]
    size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
    queries = scale_queries(a, d)
    row(f"5 scale ({a.scale:,} commands, -j2)", 1, ok, a.scale + a.scale // per_dir - ok - 0, 0,
        f"exit {code}, {took:.0f} s, makescope peak RSS {rss:.0f} MiB, record {size / 2**20:.0f} MiB, "
        f"{reads + rows_:,} accesses; " + "; ".join(queries))


def main():
    # The builds get the dispositions plain make would from a terminal: started from
    # `nohup` or a background job, SIGHUP, SIGINT or SIGQUIT come ignored, and an ignored
    # signal stays ignored through exec (the trial would compare builds that ignore it).
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    p = argparse.ArgumentParser()
    p.add_argument("--makescope", default=os.path.join(ROOT, "target/release/makescope"))
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--signal-runs", type=int, default=20)
    p.add_argument("--kill-runs", type=int, default=4)
    p.add_argument("--reader-builds", type=int, default=30)
    p.add_argument("--scale", type=int, default=100000)
    p.add_argument("--only", action="append")
    p.add_argument("--scale-dir", help="build the scale project here and keep it; when it "
                   "already holds a record, only time the queries on it again")
    p.add_argument("--nice", type=int, default=0, help="record the scale build under nice -n N")
    a = p.parse_args()
    a.makescope = os.path.abspath(a.makescope)
    if a.scale_dir:
        a.scale_dir = os.path.abspath(a.scale_dir)
    rng = random.Random(a.seed)
    trials = {"signals": trial_signals, "kills": trial_kills, "writers": trial_writers,
              "readers": trial_readers, "targets": trial_targets, "scale": trial_scale}
    work = tempfile.mkdtemp(prefix="makescope-trials-")
    try:
        for name, trial in trials.items():
            if not a.only or name in a.only:
                os.makedirs(os.path.join(work, name))
                trial(a, rng, os.path.join(work, name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nseed {a.seed}, {a.makescope}\n")
    print("| trial | runs | commands recorded | lost | hangs | notes |")
    print("|---|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
