#!/usr/bin/python3
"""The monitoring bundle in etc/monitoring/ stays true to /metrics.

- `promtool check rules` accepts both rule files;
- every cachemux_* name used by the alert rules (cachemux.rules.yml) and
  by the Grafana dashboard (its panel queries and template variables)
  appears in a live /metrics of a cachemux serving a memcached pool, as a
  family or a sample name (so cachemux_x_bucket is fine where cachemux_x is
  a histogram, and nowhere else);
- every label a selector matches on exists on that metric, and every
  label value matched with = (reason="client_limit", result="rejected")
  appears in the scrape; every label of a `by (...)` exists on one of the
  metrics of its expression (Prometheus adds instance and job);
- the alerts and panels the bundle promises are there.

cachemux-tls.rules.yml is only syntax-checked here: it watches
cachemux_tls_cert_expiry_timestamp_seconds, which only pools with TLS
have; test_tls.py (test_metrics) checks that metric, its labels and its
value on a live TLS pool.
"""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True   # never write into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from helpers import scrape  # noqa: E402

MON = os.path.join(h.TOP_SRCDIR, "etc", "monitoring")
RULES = os.path.join(MON, "cachemux.rules.yml")
TLS_RULES = os.path.join(MON, "cachemux-tls.rules.yml")
DASHBOARD = os.path.join(MON, "cachemux-dashboard.json")

# Labels the Prometheus server attaches to every scraped series.
TARGET_LABELS = {"instance", "job"}

_SELECTOR = re.compile(r"\b(cachemux_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"')
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def rule_exprs(path):
    import yaml
    with open(path) as f:
        doc = yaml.safe_load(f)
    out = []
    for g in doc["groups"]:
        for r in g["rules"]:
            out.append((r.get("alert") or r.get("record"), r["expr"]))
    return out


def dashboard_exprs(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append(("panel %r" % p.get("title"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and q:
            out.append(("variable $%s" % v["name"], q))
    return out


class Bundle(h.IntegrationTest):

    @classmethod
    def setUpClass(cls):
        cls.mc = h.Memcached(name="s1").start()
        cls.mport = h.free_port()
        cls.cmx = h.Cachemux([h.Pool("alpha", [cls.mc])], workers=2,
                             globals_={"metrics_listen": "%s:%d" % (h.HOST, cls.mport)}).start()
        with cls.cmx.client() as c:
            assert c.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
            assert c.request(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
        _, cls.fams = scrape(cls.mport)
        cls.samples = {}    # sample name -> list of label dicts
        for f in cls.fams.values():
            for sname, labels, _ in f.samples:
                cls.samples.setdefault(sname, []).append(labels)
        with open(DASHBOARD) as f:
            cls.dash = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.cmx.stop()
        cls.mc.stop()

    def labels_of(self, name):
        names = set()
        for labels in self.samples.get(name, []):
            names |= set(labels)
        return names

    def check_expr(self, where, expr):
        problems = []
        used = set()
        for m in _SELECTOR.finditer(expr):
            name, body = m.group(1), m.group(2)
            used.add(name)
            if name not in self.samples:
                problems.append("%s: %s is not in /metrics" % (where, name))
                continue
            have = self.labels_of(name)
            for lm in _MATCHER.finditer(body or ""):
                label, op, value = lm.groups()
                if label in TARGET_LABELS:
                    continue
                if label not in have:
                    problems.append("%s: %s has no label %s (has %s)"
                                    % (where, name, label, sorted(have)))
                elif op == "=" and "$" not in value and not any(
                        ls.get(label) == value for ls in self.samples[name]):
                    problems.append("%s: no %s{%s=\"%s\"} in /metrics" % (where, name, label, value))
        have_any = set(TARGET_LABELS) | {"le"}
        for name in used:
            have_any |= self.labels_of(name)
        for bm in _BY.finditer(expr):
            for label in (x.strip() for x in bm.group(1).split(",")):
                if label and label not in have_any:
                    problems.append("%s: by (%s) names a label no metric of the expression has"
                                    % (where, label))
        return used, problems

    def check_all(self, exprs):
        used, problems = set(), []
        for where, expr in exprs:
            u, p = self.check_expr(where, expr)
            used |= u
            problems += p
        self.assertEqual(problems, [])
        return used

    def test_promtool_accepts_the_rules(self):
        promtool = self.need_binary("promtool", "promtool not installed (Debian package prometheus)")
        r = subprocess.run([promtool, "check", "rules", RULES, TLS_RULES], capture_output=True,
                           text=True, timeout=h.scaled(60))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rules_use_live_metrics(self):
        exprs = rule_exprs(RULES)
        used = self.check_all(exprs)
        self.assertGreaterEqual(len(used), 6, used)
        alerts = {name for name, _ in exprs}
        for want in ("CachemuxServerEjected", "CachemuxServerFailing",
                     "CachemuxForwardErrorsRising", "CachemuxLatencyHigh",
                     "CachemuxReloadRejected", "CachemuxClientLimitReached"):
            self.assertIn(want, alerts)

    def test_tls_rules_watch_the_certificate_metric(self):
        # The live metric is checked in test_tls.py (see above).
        exprs = rule_exprs(TLS_RULES)
        self.assertEqual([n for n, _ in exprs], ["CachemuxTLSCertificateExpiring"])
        self.assertIn("cachemux_tls_cert_expiry_timestamp_seconds", exprs[0][1])

    def test_dashboard_uses_live_metrics(self):
        used = self.check_all(dashboard_exprs(self.dash))
        for want in ("cachemux_requests_total", "cachemux_forward_error_total",
                     "cachemux_request_duration_seconds_bucket",
                     "cachemux_server_request_duration_seconds_bucket",
                     "cachemux_worker_client_connections"):
            self.assertIn(want, used)

    def test_dashboard_is_well_formed(self):
        ids, heatmaps = set(), []
        for p in self.dash["panels"]:
            self.assertNotIn(p["id"], ids, "duplicate panel id")
            ids.add(p["id"])
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            if p["type"] != "row":
                self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
                self.assertTrue(p["targets"], p["title"])
            if p["type"] == "heatmap":
                heatmaps.append(p["targets"][0]["expr"])
                self.assertEqual(p["targets"][0].get("format"), "heatmap")
        self.assertTrue(any("cachemux_request_duration_seconds_bucket" in e for e in heatmaps))
        self.assertTrue(any("cachemux_server_request_duration_seconds_bucket" in e
                            for e in heatmaps))
        self.assertIn("datasource", [v["name"] for v in self.dash["templating"]["list"]])


if __name__ == "__main__":
    h.main(require=("memcached",))
