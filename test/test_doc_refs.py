#!/usr/bin/python3
"""The project's documents are the project's own and agree with the code:

- every document the tree refers to is in the tree: a path ending in .md, a
  doc/ path or a DIR/README anywhere in the sources, tests, docs, man pages
  and build files must name a file of the repository, and no file may cite
  a document the repository does not carry: the design documents are
  doc/design.md, doc/protocols.md and doc/testing.md, and the names of the
  outside documents they replace (FOREIGN below) or a directory outside the
  tree (OUTSIDE) are refused wherever they appear;
- doc/protocols.md's command tables list exactly the commands of the code's
  tables (src/redis_cmds.c; MC_CMD_LIST with src/proto_mc.c's argument
  counts), each with the same arguments and route (test/doc_tables.py reads
  both sides).

The checker is also run on planted mistakes, so a checker that finds
nothing cannot pass."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doc_tables  # noqa: E402

top = os.path.abspath(os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..")))
SELF = os.path.abspath(__file__)

# Where references may stand; everything below a directory is read.
SCAN = ("src", "include", "test", "bench", "doc", "man", "etc", "debian", ".ci",
        "README", "Makefile.am", "configure.ac")
SKIP_EXT = (".tsv", ".o", ".a", ".gz", ".deb")

# Documents that were never part of the repository (spelled backwards here
# so that this file does not cite them itself), and the directory beside the
# tree they lived in.
FOREIGN = tuple(n[::-1] for n in ("CEPS", "NGISED", "GNITSET", "ELYTS"))
OUTSIDE = "../" + "derahs"[::-1]
FOREIGN_RE = re.compile(r"\b(" + "|".join(FOREIGN) + r")(\.md)?\b")
OUTSIDE_RE = re.compile(re.escape(OUTSIDE) + r"\b")
# A path, possibly behind a shell or make variable naming the top ($top/doc/...).
_PRE = r"(?<![\w/.:$-])(?:\$[({]?\w+[)}]?/)?"
PATH_RES = (re.compile(_PRE + r"(/?(?:[\w.-]+/)*[\w-][\w.-]*\.md)\b"),
            re.compile(_PRE + r"((?:[\w.-]+/)*doc/[\w-][\w.-]*\w)"),
            re.compile(_PRE + r"((?:[\w.-]+/)+README)(?![\w-]|\.\w)"))


def resolve(path, where):
    """Whether path, as written in file where, names a file of the tree."""
    if path.startswith("/"):
        # an installed copy (/usr/share/doc/cachemux/migrating.md): its source
        cands = [os.path.join(top, "doc", os.path.basename(path)),
                 os.path.join(top, os.path.basename(path))]
    else:
        rel = path[2:] if path.startswith("./") else path
        cands = [os.path.join(os.path.dirname(where), rel), os.path.join(top, rel),
                 os.path.join(top, "doc", rel)]
    return any(os.path.isfile(c) for c in cands)


def check_text(text, where):
    """[message] for every bad reference in text (the contents of where)."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        at = "%s:%d" % (os.path.relpath(where, top), lineno)
        for m in FOREIGN_RE.finditer(line):
            out.append("%s: cites %s, which is not in the repository" % (at, m.group(0)))
        if OUTSIDE_RE.search(line):
            out.append("%s: cites %s, which is not part of the repository" % (at, OUTSIDE))
        seen = set()
        for rx in PATH_RES:
            for m in rx.finditer(line):
                path = m.group(1).rstrip(".")
                if "://" in line[max(0, m.start() - 80):m.start()] and "/" in path:
                    continue            # part of a URL
                if path in seen:
                    continue
                seen.add(path)
                if not resolve(path, where):
                    out.append("%s: refers to %s, which is not a file of the repository"
                               % (at, path))
    return out


def tree_files():
    for name in SCAN:
        p = os.path.join(top, name)
        if os.path.isfile(p):
            yield p
        for d, dirs, files in os.walk(p):
            dirs[:] = [x for x in dirs if x not in ("corpus", "__pycache__", ".deps")]
            for f in sorted(files):
                if not f.endswith(SKIP_EXT):
                    yield os.path.join(d, f)


def check_tree():
    problems, nfiles = [], 0
    for path in tree_files():
        if os.path.abspath(path) == SELF:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue                    # not text
        nfiles += 1
        problems += check_text(text, path)
    return problems, nfiles


def protocols_text():
    with open(os.path.join(top, "doc", "protocols.md"), encoding="utf-8") as f:
        return f.read()


def check_protocols(text=None):
    doc = doc_tables.doc_tables(protocols_text() if text is None else text)
    out = []
    for proto, code in (("redis", doc_tables.redis_table(top)),
                        ("memcached", doc_tables.mc_table(top))):
        mine = {r[0]: r for r in code}
        theirs = {r[0]: r for r in doc[proto]}
        if len(code) < 10 or len(doc[proto]) < 10:
            out.append("%s: only %d commands in the code, %d in doc/protocols.md"
                       % (proto, len(code), len(doc[proto])))
        for name in sorted(set(mine) - set(theirs)):
            out.append("%s command %s is in the code's table but not in doc/protocols.md"
                       % (proto, name))
        for name in sorted(set(theirs) - set(mine)):
            out.append("%s command %s is in doc/protocols.md but not in the code's table"
                       % (proto, name))
        for name in sorted(set(mine) & set(theirs)):
            if mine[name] != theirs[name]:
                out.append("%s command %s: the code says %s, doc/protocols.md says %s"
                           % (proto, name, mine[name][1:], theirs[name][1:]))
    return out, len(doc["redis"]) + len(doc["memcached"])


def self_test():
    """The checker finds planted mistakes and passes good references."""
    here = os.path.join(top, "src", "x.c")
    bad = {"see %s 6" % FOREIGN[1]: 1, "(%s.md 4.1)" % FOREIGN[0]: 1,
           OUTSIDE + "/placement": 1, "doc/nowhere.md": 1, "doc/no-such-file": 1,
           "test/nothing/README": 1, "see notes/absent.md.": 1}
    good = ("doc/design.md section 3", "doc/layers.txt", "README \"Operations\"",
            "AF_UNSPEC", "test/data/placement/README.md", "https://example.org/a/b.md",
            "bench/README.md")
    out = []
    for text, n in bad.items():
        if len(check_text(text, here)) < n:
            out.append("self-test: %r is not reported" % text)
    for text in good:
        if check_text(text, here):
            out.append("self-test: %r is reported: %s" % (text, check_text(text, here)))
    # protocols.md against the tables: a row dropped, a row added, an arity
    # and a route changed are each found
    doc = protocols_text()
    plants = (("| `GET` | 1 | key |", ""), ("| `GET` | 1 | key |", "| `GET` | 1 | key |\n| `NOPE` | 1 | key |"),
              ("| `GET` | 1 | key |", "| `GET` | 2 | key |"), ("| `GET` | 1 | key |", "| `GET` | 1 | local |"),
              ("| `delete` | delete | 1-3 |", "| `delete` | delete | 1+ |"))
    for old, new in plants:
        if old not in doc or not check_protocols(doc.replace(old, new, 1))[0]:
            out.append("self-test: protocols.md with %r as %r is not reported" % (old, new))
    return out, len(bad) + len(good) + len(plants)


def main():
    failures, passed = [], 0
    for fn in (check_tree, check_protocols, self_test):
        try:
            problems, n = fn()
        except (ValueError, OSError) as e:
            problems, n = ["%s: %s" % (fn.__name__, e)], 0
        failures += problems
        passed += max(0, n - len(problems))
    for msg in failures:
        print("FAIL:", msg)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
