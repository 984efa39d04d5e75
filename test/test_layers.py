#!/usr/bin/python3
"""The layering of src/ and include/ (doc/layers.txt) holds: test/check_layers.py
finds no upward include and no cycle in the tree, and it does find each kind
of problem when one is planted in a copy of the tree, naming the file and
line."""
import os
import shutil
import subprocess
import sys
import tempfile

top = os.path.abspath(os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..")))
checker = os.path.join(top, "test", "check_layers.py")
failures = []
passed = 0


def run(tree):
    p = subprocess.run([sys.executable, checker, tree], capture_output=True, text=True)
    return p.returncode, p.stdout


def expect(name, ok, detail):
    global passed
    if ok:
        passed += 1
        print("ok  ", name)
    else:
        failures.append(name)
        print("FAIL", name, "\n" + detail)


def planted(name, edit, want_rc, want_text):
    tmp = tempfile.mkdtemp(prefix="cachemux-layers.")
    try:
        for d in ("src", "include", "doc"):
            shutil.copytree(os.path.join(top, d), os.path.join(tmp, d))
        line = edit(tmp)
        rc, out = run(tmp)
        text = want_text.replace("LINE", str(line))
        expect(name, rc == want_rc and text in out, "rc %d, output:\n%s\nwanted: %s" % (rc, out, text))
    finally:
        shutil.rmtree(tmp)


def append_include(rel, header):
    def edit(tree):
        path = os.path.join(tree, rel)
        with open(path) as f:
            n = sum(1 for _ in f)
        with open(path, "a") as f:
            f.write('#include "%s"\n' % header)
        return n + 1
    return edit


def add_file(rel):
    def edit(tree):
        with open(os.path.join(tree, rel), "w") as f:
            f.write("/* a module nobody placed in a layer */\n")
        return 1
    return edit


rc, out = run(top)
expect("the tree has no upward include and no cycle", rc == 0 and " 0 problems" in out, out)
# route.c includes client.h: client.c including route.h closes a cycle
planted("a planted cycle is found", append_include("src/client.c", "route.h"), 1,
        "src/client.c:LINE: client includes route.h")
planted("a planted upward include is found", append_include("src/msg.c", "conn.h"), 1,
        "src/msg.c:LINE: msg (layer 0) includes conn.h of layer 1 above it")
planted("a module outside the layer list is found", add_file("src/stray.c"), 1,
        "src/stray.c:1: module stray is not in doc/layers.txt")
print("%d passed, %d failed" % (passed, len(failures)))
sys.exit(1 if failures else 0)
