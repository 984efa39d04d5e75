"""Docs stay honest: every configuration key the parser knows appears in
etc/cachemux.ini (set or commented out) and in the README, and every
command-line flag appears in the man page. The keys are read from the
parser's own key table in src/conf.c, so a new key without docs fails here."""
import os
import re
import sys

top = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), ".."))


def read(rel):
    with open(os.path.join(top, rel), encoding="utf-8") as f:
        return f.read()


def main():
    conf_c = read("src/conf.c")
    keys = re.findall(r'^\s*\{ "([a-z_]+)", KEY_[A-Z0-9_]+,', conf_c, re.M)
    ini = read("etc/cachemux.ini")
    readme = read("README")
    man = read("man/cachemux.8")
    cli_c = read("src/cli.c")
    flags = re.findall(r'\{ "([a-z-]+)", (?:no|required)_argument', cli_c)
    failures = []
    if len(keys) < 25:
        failures.append("found only %d keys in src/conf.c's table" % len(keys))
    for k in keys:
        if not re.search(r"^[;#]?%s = " % re.escape(k), ini, re.M):
            failures.append("key '%s' is not in etc/cachemux.ini" % k)
        if not re.search(r"\b%s\b" % re.escape(k), readme):
            failures.append("key '%s' is not in README" % k)
    for f in flags:
        if ("\\-\\-" + f.replace("-", "\\-")) not in man:
            failures.append("flag --%s is not in man/cachemux.8" % f)
    for msg in failures:
        print("FAIL:", msg)
    passed = 2 * len(keys) + len(flags) - len(failures)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
