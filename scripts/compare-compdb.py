#!/usr/bin/env python3
"""Compare Bear's compile_commands.json with makescope's export of the same build.

usage: scripts/compare-compdb.py BEAR.json MAKESCOPE.json [--map FROM=TO ...]

Every Bear entry must be in makescope's with the same file, directory and arguments.
Bear 3 does not keep the arguments as executed: it writes argv[0] resolved to a full
path (/usr/bin/gcc), moves `-c` first and the source last, and drops the dependency
output options (-M, -MD, -MMD, -MP, -MF F, -MT T, -MQ T); makescope keeps them as
executed. So argv[0] is compared by its resolution on PATH and the rest as a multiset
without those options (how many match exactly, in order, is printed too).
--map rewrites a path prefix in Bear's entries (a build tree copied elsewhere).
Prints counts and every difference, each with the reason the comparison finds (the
nearest makescope entry for the same file: another directory, compiler, arguments);
makescope's entries Bear lacks are counted by compiler and directory (--list-extra
lists them). Exits 1 when a Bear entry is missing.
"""
import collections
import json
import os
import shutil
import sys


def key(entry, maps):
    def fix(text):
        for old, new in maps:
            text = text.replace(old, new)
        return text

    args = [fix(a) for a in entry["arguments"]]
    kept, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
        elif a in ("-MF", "-MT", "-MQ"):
            skip = True
        elif a not in ("-M", "-MM", "-MD", "-MMD", "-MP", "-MG"):
            kept.append(a)
    exe = args[0] if "/" in args[0] else (shutil.which(args[0]) or args[0])
    return (
        fix(os.path.normpath(entry["file"])),
        fix(os.path.normpath(entry["directory"])),
        os.path.realpath(exe),
        tuple(sorted(kept)),
        tuple(args[1:]),
    )


def loose(k):
    return k[:4]


def why_missing(k, ours_files):
    """Why Bear's entry (its key k) has no equal in makescope's: the nearest entry
    for the same file says what differs."""
    same_file = ours_files.get(k[0], [])
    if not same_file:
        return "no makescope entry compiles this file", ""
    same_dir = [o for o in same_file if o[1] == k[1]]
    if not same_dir:
        return "makescope compiles it in another directory", same_file[0][1]
    best = min(same_dir, key=lambda o: len(set(k[3]) ^ set(o[3])))
    if best[2] != k[2]:
        return "another compiler", f"bear {k[2]}, makescope {best[2]}"
    ours_only = sorted(set(best[3]) - set(k[3]))
    bear_only = sorted(set(k[3]) - set(best[3]))
    return "arguments differ", f"bear only {bear_only[:6]}, makescope only {ours_only[:6]}"


def main():
    argv = sys.argv[1:]
    maps = []
    while "--map" in argv:
        i = argv.index("--map")
        old, new = argv[i + 1].split("=", 1)
        maps.append((old, new))
        del argv[i : i + 2]
    argv = [a for a in argv if a != "--list-extra"]
    bear_path, ours_path = argv
    bear = json.load(open(bear_path))
    ours = json.load(open(ours_path))
    ours_keyed = [key(e, []) for e in ours]
    ours_keys = collections.Counter(loose(k) for k in ours_keyed)
    ours_exact = {k for k in ours_keyed}
    ours_files = {}
    for k in ours_keyed:
        ours_files.setdefault(k[0], []).append(k)
    bear_keyed = [key(e, maps) for e in bear]
    missing = [k for k in bear_keyed if loose(k) not in ours_keys]
    same_order = sum(1 for k in bear_keyed if k in ours_exact)
    print(f"bear: {len(bear)} entries; makescope: {len(ours)} entries")
    print(f"bear entries in makescope's with the same file, directory, arguments: "
          f"{len(bear) - len(missing)} of {len(bear)} (in the same order: {same_order})")
    bear_keys = collections.Counter(loose(k) for k in bear_keyed)
    twice = sum(n - 1 for n in bear_keys.values() if n > 1)
    print(f"bear entries that repeat an earlier one exactly: {twice}; "
          f"makescope: {sum(n - 1 for n in ours_keys.values() if n > 1)}")
    reasons = collections.defaultdict(list)
    for k in missing:
        why, detail = why_missing(k, ours_files)
        reasons[why].append((k[0], k[1], detail))
    for why, items in sorted(reasons.items()):
        print(f"missing from makescope's, {why}: {len(items)}")
        for file, directory, detail in items:
            print(f"   {file} (in {directory}) {detail}")
    extra = [k for k in ours_keyed if loose(k) not in bear_keys]
    print(f"makescope entries Bear lacks: {len(extra)}")
    by_compiler = collections.Counter(k[2] for k in extra)
    for compiler, n in by_compiler.most_common():
        print(f"   {n} run by {compiler}")
    by_dir = collections.Counter(os.path.dirname(k[0]) for k in extra)
    for d, n in by_dir.most_common(15):
        print(f"   {n} of files in {d}")
    if "--list-extra" in sys.argv:
        for k in extra:
            print("extra:", k[0], "in", k[1], " ".join(k[4])[:200])
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
