"""Reads the protocols' command tables out of the C sources, and the
command tables out of doc/protocols.md, in one canonical form, so that
test/test_doc_refs.py can compare them (and a writer can print the rows
protocols.md needs: `python3 test/doc_tables.py`).

Redis: every row of src/redis_cmds.c's table, written with one of its row
macros (KEY, KEY_AT, STREAMS, NOKEY, EVAL, SPLIT, LOCAL, UNSUPPORTED, FANOUT),
becomes
(name, arity, route):
  arity  "N" (exactly N arguments after the name), "N+" (at least N) or
         "N-M";
  route  key | key N (argument N) | after STREAMS | placeholder | numkeys |
         split | split pairs | local | unsupported, and for a split how its replies merge; a fan-out
         "all servers, <how the replies merge>" or "one server at a time".
memcached: every command of include/proto_mc.h's MC_CMD_LIST with its kind
and that kind's argument counts from src/proto_mc.c's mc_kinds table.
"""
import os
import re
import sys

ANY = "REDIS_ANY"
MERGES = {"MSG_MERGE_SUM": "summed", "MSG_MERGE_ARRAY": "array in key order",
          "MSG_MERGE_ALL_OK": "+OK if every part is"}
FANOUT_MERGES = {"MSG_MERGE_SUM": "all servers, summed",
                 "MSG_MERGE_ALL_OK": "all servers, +OK if every one is",
                 "MSG_MERGE_CONCAT": "all servers, joined",
                 "MSG_MERGE_RANDOM": "all servers, a random key",
                 "MSG_MERGE_SCAN": "one server at a time",
                 "MSG_MERGE_INFO": "all servers, with the proxy's sections",
                 "MSG_MERGE_NONE": "all servers, by subcommand"}


def _arity(lo, hi, any_=ANY):
    lo = int(lo)
    if hi == any_:
        return "%d+" % lo
    hi = int(hi)
    return "%d" % lo if lo == hi else "%d-%d" % (lo, hi)


def redis_table(top):
    """[(name, arity, route)] in the table's order; raises ValueError on a
    row it cannot read (a new row macro: teach it here)."""
    with open(os.path.join(top, "src", "redis_cmds.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"redis_cmds\[\] = \{(.*?)\n\};", text, re.S)
    if not m:
        raise ValueError("no redis_cmds[] table in src/redis_cmds.c")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    rows = []
    for call in re.finditer(r"([A-Z_]+)\(([^()]*)\)\s*,", body):
        macro = call.group(1)
        args = [a.strip() for a in call.group(2).split(",")]
        name = args[0].strip('"')
        if macro == "KEY":
            rows.append((name, _arity(args[1], args[2]), "key"))
        elif macro == "KEY_AT":
            rows.append((name, _arity(args[2], args[3]), "key %s" % args[1]))
        elif macro == "STREAMS":
            rows.append((name, _arity(args[1], ANY), "after STREAMS"))
        elif macro == "NOKEY":
            rows.append((name, _arity(args[1], args[2]), "placeholder"))
        elif macro == "EVAL":
            rows.append((name, "2+", "numkeys"))
        elif macro == "SPLIT":
            how = "split" if args[3] == "1" else "split pairs"
            rows.append((name, _arity(args[1], args[2]), "%s, %s" % (how, MERGES[args[4]])))
        elif macro == "LOCAL":
            rows.append((name, _arity(args[1], args[2]), "local"))
        elif macro == "FANOUT":
            rows.append((name, _arity(args[1], args[2]), FANOUT_MERGES[args[3]]))
        elif macro == "UNSUPPORTED":
            rows.append((name, _arity(args[1], args[2]), "unsupported"))
        else:
            raise ValueError("src/redis_cmds.c: row macro %s is unknown to test/doc_tables.py"
                             % macro)
    left = re.sub(r"([A-Z_]+)\(([^()]*)\)\s*,", "", body).strip()
    if left:
        raise ValueError("src/redis_cmds.c: cannot read %r" % left[:80])
    return rows


def mc_table(top):
    """[(name, kind, arity)] in MC_CMD_LIST's order."""
    with open(os.path.join(top, "include", "proto_mc.h"), encoding="utf-8") as f:
        hdr = f.read()
    with open(os.path.join(top, "src", "proto_mc.c"), encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"#define MC_CMD_LIST\(X\)(.*?)\n\n", hdr, re.S)
    if not m:
        raise ValueError("no MC_CMD_LIST in include/proto_mc.h")
    kinds = {}
    for k in re.finditer(r"\[MC_KIND_([A-Z_]+)\]\s*=\s*\{\s*(\d+),\s*(\w+),", src):
        kinds[k.group(1)] = _arity(k.group(2), k.group(3), "MC_ARGS_ANY")
    rows = []
    for x in re.finditer(r'X\(MC_\w+,\s*"([a-z_]+)",\s*MC_KIND_([A-Z_]+)\)', m.group(1)):
        kind = x.group(2)
        if kind not in kinds:
            raise ValueError("src/proto_mc.c: no mc_kinds row for MC_KIND_%s" % kind)
        rows.append((x.group(1), kind.lower(), kinds[kind]))
    return rows


def doc_tables(text):
    """The rows of protocols.md's two command tables: {"redis": [...],
    "memcached": [...]}, each row the tuple of its first three cells (the
    command name without its backquotes, lower case)."""
    out = {"redis": [], "memcached": []}
    part = None
    for line in text.split("\n"):
        if line.startswith("<!-- commands:"):
            part = line.split(":", 1)[1].strip(" ->")
            continue
        if line.startswith("<!-- end -->"):
            part = None
            continue
        if part and line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out[part].append((cells[0].strip("`").lower(), cells[1], cells[2]))
    return out


if __name__ == "__main__":
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    print("<!-- commands: memcached -->")
    print("| command | kind | arguments | notes |")
    print("|---|---|---|---|")
    for name, kind, arity in mc_table(top):
        print("| `%s` | %s | %s | |" % (name, kind, arity))
    print("<!-- end -->\n")
    print("<!-- commands: redis -->")
    print("| command | arguments | route | notes |")
    print("|---|---|---|---|")
    for name, arity, route in redis_table(top):
        print("| `%s` | %s | %s | |" % (name.upper(), arity, route))
    print("<!-- end -->")
