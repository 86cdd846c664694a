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
Prints counts and the first differences; exits 1 when a Bear entry is missing.
"""
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


def main():
    argv = sys.argv[1:]
    maps = []
    while "--map" in argv:
        i = argv.index("--map")
        old, new = argv[i + 1].split("=", 1)
        maps.append((old, new))
        del argv[i : i + 2]
    bear_path, ours_path = argv
    bear = json.load(open(bear_path))
    ours = json.load(open(ours_path))
    ours_keys = {loose(key(e, [])) for e in ours}
    ours_exact = {key(e, []) for e in ours}
    ours_files = {}
    for e in ours:
        ours_files.setdefault(key(e, [])[0], []).append(e)
    missing = [e for e in bear if loose(key(e, maps)) not in ours_keys]
    same_order = sum(1 for e in bear if key(e, maps) in ours_exact)
    print(f"bear: {len(bear)} entries; makescope: {len(ours)} entries")
    print(f"bear entries in makescope's with the same file, directory, arguments: "
          f"{len(bear) - len(missing)} of {len(bear)} (in the same order: {same_order})")
    bear_keys = {loose(key(e, maps)) for e in bear}
    extra = [e for e in ours if loose(key(e, [])) not in bear_keys]
    print(f"makescope entries Bear lacks: {len(extra)}")
    for e in missing[:5]:
        k = key(e, maps)
        print("missing:", k[0], "in", k[1])
        for o in ours_files.get(k[0], [])[:1]:
            ok = key(o, [])
            diff = sorted(set(k[4]) ^ set(ok[4]))[:6]
            print("   ours differs:", ok[1] if ok[1] != k[1] else "", diff)
    for e in extra[:5]:
        print("extra:", e["file"], e.get("output"))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
