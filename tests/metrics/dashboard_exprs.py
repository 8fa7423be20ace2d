#!/usr/bin/python3
"""Extract the PromQL of a Grafana dashboard and check it against Prometheus.

    dashboard_exprs.py list  [--dashboard FILE] [--rate-interval 1m]
    dashboard_exprs.py check --prometheus http://127.0.0.1:9090 [--dashboard FILE]
                             [--rate-interval 1m] [--timeout 10]

`list` prints every expression (after substitution), one block per panel target.
`check` runs each one through /api/v1/query and reports the ones that fail or
return no data; it exits 1 if any does, 2 on usage or connection errors.

Every panel target `expr` (rows and nested panels included) is checked, and so is
every query variable written as `label_values(<selector>, <label>)`: it must yield
at least one series that carries the label.

Substitutions (Grafana's own variables first, then the dashboard's):
  $__rate_interval, $__interval, ${__rate_interval} ...  -> --rate-interval (default 1m)
  $__range                                               -> --range (default 1h)
  $__interval_ms / $__range_s and similar numeric forms   -> the same durations as numbers
  every other $var, ${var}, ${var:fmt}, [[var]]          -> .*  (all values, regex form)
The datasource (`${datasource}`) only appears in `datasource` fields, which are ignored.

Standard library only; run with /usr/bin/python3.
"""

import argparse
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DASHBOARD = os.path.join(REPO_ROOT, "dashboards", "vswitchd.json")

# $name, ${name}, ${name:format}, [[name]] / [[name:format]]
VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$", re.S)
DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(d):
    m = DURATION_RE.match(d)
    if not m:
        raise ValueError(f"not a single-unit Prometheus duration: {d!r} (use e.g. 30s, 1m, 2h)")
    return int(m.group(1)) * UNIT_SECONDS[m.group(2)]


def substitute(expr, rate_interval, range_):
    ri_s = duration_seconds(rate_interval)
    range_s = duration_seconds(range_)
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": range_,
        "__rate_interval_ms": str(int(ri_s * 1000)),
        "__interval_ms": str(int(ri_s * 1000)),
        "__range_ms": str(int(range_s * 1000)),
        "__range_s": str(int(range_s)),
    }

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return builtins.get(name, ".*")

    return VAR_RE.sub(repl, expr)


def walk_panels(panels, path=()):
    for p in panels or []:
        title = p.get("title") or f"panel {p.get('id')}"
        yield path + (title,), p
        # Rows (collapsed or not) and library-panel-like nesting.
        yield from walk_panels(p.get("panels"), path + (title,))


def extract(dashboard, rate_interval, range_):
    """Returns [(where, kind, raw, query)]. kind is 'expr' or 'label_values'."""
    out = []
    for path, panel in walk_panels(dashboard.get("panels")):
        for t in panel.get("targets") or []:
            if t.get("hide"):
                continue
            raw = t.get("expr")
            if raw is None or not raw.strip():
                continue
            where = " / ".join(path) + f" [{t.get('refId', '?')}]"
            out.append((where, "expr", raw, substitute(raw, rate_interval, range_)))
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        q = q or var.get("definition") or ""
        m = LABEL_VALUES_RE.match(q)
        where = f"variable ${var.get('name')}"
        if not m:
            # query_result(...) or a bare metric: check it like an expression.
            inner = re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", q, flags=re.S)
            if inner.strip():
                out.append((where, "expr", q, substitute(inner, rate_interval, range_)))
            continue
        selector, label = m.group(1), m.group(2)
        query = f"count by ({label}) ({substitute(selector, rate_interval, range_)})"
        out.append((where, "label_values:" + label, q, query))
    return out


def query(base, expr, timeout):
    url = base.rstrip("/") + "/api/v1/query"
    data = urllib.parse.urlencode({"query": expr}).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        # Prometheus answers 400/422 with a JSON error body for bad queries.
        try:
            body = json.load(e)
        except Exception:
            raise RuntimeError(f"HTTP {e.code} from {url}") from e
    if body.get("status") != "success":
        return None, f"{body.get('errorType', 'error')}: {body.get('error', body)}"
    return body["data"], None


def result_size(data, kind):
    rtype, result = data["resultType"], data["result"]
    if rtype in ("scalar", "string"):
        return 1
    if kind.startswith("label_values:"):
        label = kind.split(":", 1)[1]
        return sum(1 for s in result if s["metric"].get(label, "") != "")
    return len(result)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["list", "check"])
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD,
                    help="Grafana dashboard JSON (default: %(default)s)")
    ap.add_argument("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090 (check)")
    ap.add_argument("--rate-interval", default="1m",
                    help="value for $__rate_interval / $__interval (default: %(default)s)")
    ap.add_argument("--range", default="1h", help="value for $__range (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-query timeout in seconds")
    ap.add_argument("--raw", action="store_true", help="list: print expressions before substitution")
    args = ap.parse_args(argv)

    try:
        duration_seconds(args.rate_interval)
        duration_seconds(args.range)
        with open(args.dashboard) as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        print(f"dashboard_exprs: {e}", file=sys.stderr)
        return 2

    exprs = extract(dashboard, args.rate_interval, args.range)
    if not exprs:
        print(f"dashboard_exprs: no expressions found in {args.dashboard}", file=sys.stderr)
        return 2

    if args.mode == "list":
        for where, kind, raw, q in exprs:
            print(f"# {where}" + ("" if kind == "expr" else f"  ({raw.strip()})"))
            print((raw if args.raw else q).strip())
            print()
        return 0

    if not args.prometheus:
        print("dashboard_exprs: check needs --prometheus URL", file=sys.stderr)
        return 2

    failed = 0
    for where, kind, raw, q in exprs:
        try:
            data, err = query(args.prometheus, q, args.timeout)
        except (OSError, RuntimeError) as e:
            print(f"dashboard_exprs: cannot query {args.prometheus}: {e}", file=sys.stderr)
            return 2
        if err is not None:
            status, detail = "ERROR", err
        else:
            n = result_size(data, kind)
            status, detail = ("ok", f"{n} series") if n else ("EMPTY", "no data")
        if status != "ok":
            failed += 1
        one_line = " ".join(q.split())
        print(f"{status:5} {where}: {detail}\n      {one_line}")

    total = len(exprs)
    print(f"\n{total - failed}/{total} expressions returned data", file=sys.stderr)
    if failed:
        print(f"dashboard_exprs: {failed} expression(s) failed or returned no data", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is not an error
    sys.exit(main())
