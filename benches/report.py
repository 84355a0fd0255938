#!/usr/bin/env python3
"""Summarise a `cargo bench` run as the Markdown tables of BENCHMARKS.md.

Usage: python3 benches/report.py [TARGET_DIR]   (default: $CARGO_TARGET_DIR or target)

Reads what the bench targets left in TARGET_DIR/criterion/: criterion's estimates
(median of each case), insn_counts.csv (callgrind instructions per operation) and
memory.csv (the memory bench). Prints one table per group, with every case's median
and its ratio to ours, then the targets with met/missed. Standard library only.
"""

import csv
import json
import os
import sys

OURS = "ours"


def fmt_time(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def load(target):
    root = os.path.join(target, "criterion")
    cases = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        tp = bench.get("throughput") or {}
        function, param = bench.get("function_id"), bench.get("value_str")
        if function is None:  # BenchmarkId::from_parameter: the function is the value
            function, param = param, None
        cases[bench["full_id"]] = {
            "group": bench["group_id"],
            "function": function,
            "param": param,
            "median": est["median"]["point_estimate"],
            "lo": est["median"]["confidence_interval"]["lower_bound"],
            "hi": est["median"]["confidence_interval"]["upper_bound"],
            "elements": tp.get("Elements", 1) if "Elements" in tp else 1,
            "bytes": tp.get("Bytes"),
        }
    insn = {}
    path = os.path.join(root, "insn_counts.csv")
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f):
                insn[row["case"]] = float(row["insn_per_op"])
    memory = {}
    path = os.path.join(root, "memory.csv")
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f):
                memory[row["key"]] = row["value"]
    return cases, insn, memory


def case_id(group, function, param):
    return f"{group}/{function}" + (f"/{param}" if param else "")


def table(cases, insn, group):
    rows = [c for c in cases.values() if c["group"] == group]
    if not rows:
        return
    params = []
    for c in rows:
        if c["param"] not in params:
            params.append(c["param"])
    fixed = {"idle": 0, "alive1000": 1}
    params.sort(key=lambda p: (p is None, int(p) if p and p.isdigit() else fixed.get(p, 9), p or ""))
    print(f"### `{group}`\n")
    print("| case | median (95% CI) | per element | time ÷ ours | Ir/op (callgrind) | Ir ÷ ours |")
    print("|---|---|---|---|---|---|")
    for p in params:
        prow = [c for c in rows if c["param"] == p]
        ours = next((c for c in prow if c["function"] == OURS), None)
        ours_ir = insn.get(case_id(group, OURS, p))
        prow.sort(key=lambda c: (c["function"] != OURS, c["function"]))
        for c in prow:
            cid = case_id(group, c["function"], p)
            ratio = f"{c['median'] / ours['median']:.2f}×" if ours else "-"
            ir = insn.get(cid)
            ir_ratio = f"{ir / ours_ir:.2f}×" if ir and ours_ir else "-"
            if c["bytes"]:
                per = f"{c['bytes'] / c['median'] * 1e9 / 2**20:.0f} MiB/s"
            elif c["elements"] > 1:
                per = fmt_time(c["median"] / c["elements"])
            else:
                per = ""
            name = c["function"] + (f" / {p}" if p else "")
            print(
                f"| {name} | {fmt_time(c['median'])} ({fmt_time(c['lo'])} – {fmt_time(c['hi'])}) "
                f"| {per} | {ratio} | {f'{ir:.0f}' if ir is not None else '-'} | {ir_ratio} |"
            )
    print()


def targets(cases, insn, memory):
    def med(cid):
        c = cases.get(cid)
        return c["median"] if c else None

    def check(name, value, ok, detail):
        if value is None:
            print(f"| {name} | - | not measured | {detail} |")
        else:
            print(f"| {name} | {value} | {'met' if ok else 'MISSED'} | {detail} |")

    print("### Targets\n")
    print("| target | measured (time; callgrind Ir) | status | detail |")
    print("|---|---|---|---|")

    def ratio(a, b, src):
        x, y = src.get(a), src.get(b)
        return (x / y) if x and y else None

    def show(r, ri, suffix=""):
        if r is None:
            return None
        return f"{r:.2f}×{suffix}" + (f"; Ir {ri:.2f}×" if ri else "")

    times = {k: v["median"] for k, v in cases.items()}
    r = ratio("wait_pending_once/ours", "wait_pending_once/corosensei-raw-switch", times)
    ri = ratio("wait_pending_once/ours", "wait_pending_once/corosensei-raw-switch", insn)
    check(
        "wait round trip ≤ 1.2× corosensei resume+suspend",
        show(r, ri),
        r is not None and r <= 1.2,
        "ours wait ÷ corosensei raw switch",
    )
    r = ratio("wait_pending_once/stackful-0.1.5", "wait_pending_once/ours", times)
    ri = ratio("wait_pending_once/stackful-0.1.5", "wait_pending_once/ours", insn)
    check(
        "wait ≥ 3× faster than stackful 0.1.5",
        show(r, ri, " faster"),
        r is not None and r >= 3,
        "stackful-0.1.5 wait ÷ ours",
    )
    r = ratio("round_trip/ours", "round_trip/corosensei", times)
    ri = ratio("round_trip/ours", "round_trip/corosensei", insn)
    check(
        "generator round trip ≤ 1.0× corosensei",
        show(r, ri),
        r is not None and r <= 1.0,
        "ours ÷ corosensei",
    )
    r = ratio("create_run_drop/ours/alive1000", "create_run_drop/stackful-0.1.5/alive1000", times)
    ri = ratio("create_run_drop/ours/alive1000", "create_run_drop/stackful-0.1.5/alive1000", insn)
    check(
        "create+run+drop, 1,000 alive ≤ 0.5× stackful 0.1.5",
        show(r, ri),
        r is not None and r <= 0.5,
        "ours ÷ stackful-0.1.5 (alive1000)",
    )
    r = ratio("create_run_drop/ours-no-pool/alive1000", "create_run_drop/ours/alive1000", times)
    check(
        "create+run+drop ≥ 100× faster than a fresh mmap",
        show(r, None, " faster"),
        r is not None and r >= 100,
        "ours-no-pool ÷ ours (alive1000); callgrind does not see kernel work",
    )
    key = "max_coroutines:ours (stackful::Builder::generator)"
    n = int(memory[key]) if key in memory else None
    check(
        "≥ 30,000 suspended coroutines at default limits",
        n and f"{n} (vm.max_map_count = {memory.get('vm.max_map_count')})",
        n is not None and n >= 30000,
        "then `Builder` returns Err: " + memory.get("error:ours (stackful::Builder::generator)", "?"),
    )
    key = "rss_bytes_per_coroutine:ours (StackfulGenerator)"
    rss = float(memory[key]) if key in memory else None
    check(
        "RSS ≤ 12 KiB per suspended coroutine",
        rss and f"{rss / 1024:.2f} KiB",
        rss is not None and rss <= 12 * 1024,
        "10,000 suspended generators; page tables (not in RSS): "
        + f"{float(memory.get('page_table_bytes_per_coroutine:ours (StackfulGenerator)', 'nan')) / 1024:.2f} KiB",
    )
    print()


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    cases, insn, memory = load(target)
    if not cases:
        sys.exit(f"no criterion results under {target}/criterion (run `cargo bench` first)")
    order = [
        "round_trip",
        "wait_pending_once",
        "create_run_drop",
        "create_run_drop_burst16",
        "nesting_depth",
        "nesting_generators",
        "nesting_futures",
        "sync_over_async",
    ]
    groups = order + sorted({c["group"] for c in cases.values()} - set(order))
    for g in groups:
        table(cases, insn, g)
    if memory:
        print("### `memory`\n")
        print("| key | value |")
        print("|---|---|")
        for k, v in memory.items():
            print(f"| {k} | {v} |")
        print()
    targets(cases, insn, memory)


if __name__ == "__main__":
    main()
