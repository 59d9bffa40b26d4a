#!/usr/bin/env python3
"""Checks that every PromQL expression mdevmon ships parses, with Debian's promtool.

- The rule files (deploy/prometheus/*.rules.yml) go through `promtool check rules` as they are.
- Every query of the Grafana dashboard (panel targets and `label_values(...)` variable queries) has its
  template variables replaced by concrete values and becomes one recording rule of a temporary rule
  file, which `promtool check rules` then parses (promtool has no "parse this expression" command).
- The dashboard's structure is checked too: schema version, uid, the `${datasource}` variable, the
  instance/parent/mdev_type variables, unique panel ids, and every query on `${datasource}`.

Usage: scripts/check-promql.py [--promtool PATH] [--list] [RULES.yml ...] [DASHBOARD.json ...]
With no files it checks deploy/prometheus/*.rules.yml and dashboards/*.json. `--list` prints each
dashboard query after substitution, one per line, as `panel <id> <title> [<refId>]<TAB><expr>` or `variable <name><TAB><selector>`.
Only the standard library is used. Exit status 0 when everything parses, 1 otherwise.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Concrete stand-ins for Grafana's variables: values that are valid wherever the variable may appear
# (a regex matcher's value or a range duration).
SUBSTITUTIONS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "__range_s": "3600",
    "job": "mdevmon",
    "instance": ".*",
    "parent": ".*",
    "mdev_type": ".*",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
REQUIRED_VARIABLES = ("datasource", "instance", "parent", "mdev_type")


def substitute(expr, problems, where):
    def replace(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in SUBSTITUTIONS:
            problems.append(f"{where}: unknown template variable ${name}")
            return m.group(0)
        return SUBSTITUTIONS[name]
    return VARIABLE.sub(replace, expr)


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_queries(path, problems):
    """(description, expr) for every query of the dashboard, variables substituted."""
    with open(path) as f:
        d = json.load(f)
    queries = []
    where = os.path.relpath(path, ROOT)
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problems.append(f"{where}: schemaVersion must be >= 36, is {d.get('schemaVersion')}")
    if not d.get("uid"):
        problems.append(f"{where}: no uid")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    for name in REQUIRED_VARIABLES:
        if name not in variables:
            problems.append(f"{where}: no template variable {name}")
    ds = variables.get("datasource", {})
    if ds and (ds.get("type") != "datasource" or ds.get("query") != "prometheus"):
        problems.append(f"{where}: variable datasource must be type datasource, query prometheus")
    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        if (v.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{where}: variable {name} does not use ${{datasource}}")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = LABEL_VALUES.match(q or "")
        if not m:
            problems.append(f"{where}: variable {name}: expected label_values(<selector>, <label>), got {q!r}")
            continue
        queries.append((f"variable {name}", substitute(m.group(1), problems, f"variable {name}")))

    ids = set()
    for p in walk_panels(d.get("panels", [])):
        title = p.get("title", "?")
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate panel id {p.get('id')} ({title})")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            problems.append(f"{where}: panel {title!r} has no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: panel {title!r} has no queries")
        refs = set()
        for t in targets:
            ref = t.get("refId", "?")
            if ref in refs:
                problems.append(f"{where}: panel {title!r}: duplicate refId {ref}")
            refs.add(ref)
            uid = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if uid != "${datasource}":
                problems.append(f"{where}: panel {title!r} [{ref}] does not use ${{datasource}} (uid {uid!r})")
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append(f"{where}: panel {title!r} [{ref}] has no expr")
                continue
            queries.append((f"panel {p.get('id')} {title} [{ref}]", substitute(expr, problems, f"panel {title!r} [{ref}]")))
    return queries


def promtool_check(promtool, files):
    r = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL", "promtool"))
    ap.add_argument("--list", action="store_true", help="print the dashboard queries after substitution")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    files = args.files or sorted(glob.glob(os.path.join(ROOT, "deploy/prometheus/*.rules.yml"))) + \
        sorted(glob.glob(os.path.join(ROOT, "dashboards/*.json")))
    rule_files = [f for f in files if not f.endswith(".json")]
    dashboards = [f for f in files if f.endswith(".json")]
    problems = []
    ok = True

    if rule_files:
        rc, out = promtool_check(args.promtool, rule_files)
        print(out)
        if rc != 0:
            ok = False

    for path in dashboards:
        queries = dashboard_queries(path, problems)
        if args.list:
            for name, expr in queries:
                print(f"{name}\t{' '.join(expr.split())}")
        # One group per query, named after the panel, so promtool's error names the culprit.
        doc = {"groups": [{"name": name, "rules": [{"record": "dashboard:query:check", "expr": expr}]}
                          for name, expr in queries]}
        with tempfile.NamedTemporaryFile("w", suffix=".rules.json", delete=False) as tmp:
            json.dump(doc, tmp, indent=1)  # JSON is YAML: promtool reads it as a rule file
        try:
            rc, out = promtool_check(args.promtool, [tmp.name])
        finally:
            os.unlink(tmp.name)
        rel = os.path.relpath(path, ROOT)
        if rc != 0:
            ok = False
            print(f"{rel}: dashboard queries do not parse:\n{out}")
        else:
            print(f"{rel}: {len(queries)} dashboard queries parse")

    for p in problems:
        print(f"problem: {p}")
    if problems:
        ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
