"""Docs stay honest: every configuration key the parser knows appears in
etc/cachemux.ini (set or commented out), in the README and in
cachemux.ini(5) (as its own entry, under the section it belongs to), and
every command-line flag appears in cachemux(8). The keys are read from the
parser's own key tables in src/conf.c, so a new key without docs fails here.

The man pages must also render without a warning: `mandoc -T lint -W
warning` and `groff -ww -z -man` (each skipped when not installed, failed
instead when CACHEMUX_REQUIRE_ALL=1)."""
import glob
import os
import re
import shutil
import subprocess
import sys

top = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), ".."))


def read(rel):
    with open(os.path.join(top, rel), encoding="utf-8") as f:
        return f.read()


MAN_PAGES = ("man/cachemux.8", "man/cachemux.ini.5")
REQUIRE_ALL = os.environ.get("CACHEMUX_REQUIRE_ALL", "") not in ("", "0")
KEY_RE = r'^\s*\{ "([a-z_]+)", KEY_[A-Z0-9_]+,'


def key_tables(conf_c):
    """{"global": [...], "pool": [...]} from the global_keys and pool_keys
    tables."""
    out = {}
    for which in ("global", "pool"):
        m = re.search(r"%s_keys\[\] = \{(.*?)\n\};" % which, conf_c, re.S)
        out[which] = re.findall(KEY_RE, m.group(1), re.M) if m else []
    return out


def man_entries(man5):
    """{"global": set, "pool": set} of the keys cachemux.ini(5) gives an
    entry (.TP then .B key) under THE [cachemux] SECTION and POOL KEYS."""
    out = {"global": set(), "pool": set()}
    part = None
    lines = man5.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            title = line[4:].strip('"')
            part = "global" if "[cachemux]" in title else "pool" if title == "POOL KEYS" else None
        elif part and line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            out[part].add(lines[i + 1][3:].strip())
    return out


def lint_man(failures):
    """Returns how many checks ran."""
    ran = 0
    linters = (("mandoc", ["mandoc", "-T", "lint", "-W", "warning"]),
               ("groff", ["groff", "-ww", "-z", "-man"]))
    for name, argv in linters:
        if shutil.which(name) is None:
            if REQUIRE_ALL:
                failures.append("%s is not installed (CACHEMUX_REQUIRE_ALL=1)" % name)
            else:
                print("SKIP: %s is not installed" % name)
            continue
        for page in MAN_PAGES:
            r = subprocess.run(argv + [os.path.join(top, page)], capture_output=True, text=True)
            ran += 1
            if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
                failures.append("%s on %s: exit %d\n%s%s" % (" ".join(argv), page, r.returncode,
                                                              r.stdout, r.stderr))
    return ran


def main():
    conf_c = "".join(read(os.path.relpath(p, top))
                     for p in sorted(glob.glob(os.path.join(top, "src", "conf*.c"))))
    keys = re.findall(KEY_RE, conf_c, re.M)
    tables = key_tables(conf_c)
    ini = read("etc/cachemux.ini")
    readme = read("README")
    man = read("man/cachemux.8")
    cli_c = read("src/cli.c")
    flags = re.findall(r'\{ "([a-z-]+)", (?:no|required)_argument', cli_c)
    man5 = read("man/cachemux.ini.5")
    entries = man_entries(man5)
    failures = []
    if len(keys) < 25:
        failures.append("found only %d keys in src/conf.c's table" % len(keys))
    if sorted(tables["global"] + tables["pool"]) != sorted(keys):
        failures.append("cannot tell the global_keys and pool_keys tables apart in src/conf.c")
    for which, title in (("global", "THE [cachemux] SECTION"), ("pool", "POOL KEYS")):
        for k in tables[which]:
            if k not in entries[which]:
                failures.append("key '%s' has no entry under %s in man/cachemux.ini.5"
                                % (k, title))
        for k in sorted(entries[which] - set(tables[which])):
            failures.append("man/cachemux.ini.5 describes '%s' under %s, which the parser "
                            "does not know there" % (k, title))
    for k in keys:
        if not re.search(r"^[;#]?%s = " % re.escape(k), ini, re.M):
            failures.append("key '%s' is not in etc/cachemux.ini" % k)
        if not re.search(r"\b%s\b" % re.escape(k), readme):
            failures.append("key '%s' is not in README" % k)
    for f in flags:
        if ("\\-\\-" + f.replace("-", "\\-")) not in man:
            failures.append("flag --%s is not in man/cachemux.8" % f)
    linted = lint_man(failures)
    for msg in failures:
        print("FAIL:", msg)
    passed = max(0, 3 * len(keys) + len(flags) + linted - len(failures))
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
