#!/usr/bin/python3
"""Turn the raw measurements of run.sh into the markdown results table.

    report.py BENCH_DIR

Reads BENCH_DIR/raw/index.tsv (one line per measured command: case, tool,
data path, file of spawn lines "wall_s rss_kib cpu_s", file of baseline JSON
lines or qinsaudit's JSON report), BENCH_DIR/raw/env.txt and, when present,
BENCH_DIR/raw/gobench.txt. Writes BENCH_DIR/results.md and prints it.

Every figure is a median over the runs unless the column says otherwise;
ratios are baseline median / qinsaudit median. The "check" column compares
the tensor count and stored bytes each tool found with qinsaudit's JSON
totals, so a fast wrong answer cannot pass.
"""
import json
import os
import statistics
import sys

# Short labels for the targets table.
SHORT = {"a": "a (GPT-2-large fp32 .pt)", "b1": "b (Phi-3.5 f32 pair)", "b2": "b (Phi-3.5 bf16 pair)"}
CASES = {
    "a": "a. GPT-2-large fp32 state_dict, torch.save zip",
    "a-cold": "a. same, cold page cache (1 run after drop_caches)",
    "b1": "b. Phi-3.5-mini shape, 2 shards + index, f32 (sparse)",
    "b2": "b. Phi-3.5-mini shape, 2 shards + index, bf16 as published (sparse)",
    "c": "c. 2,000 tiny tensors, torch.save zip",
}
TOOLS = {
    "qinsaudit": "`qinsaudit audit --format json`",
    "torch-load": "python: `torch.load` + sum unique storages",
    "st-header": "python: json header parse + sum (header-only)",
    "st-load": "python: read all tensors (load_file equivalent) + sum",
}
MIB = 1024 * 1024


def human(n):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n} B"


def ms(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def size(n):
    """Decimal GB as the issue counts them, with the IEC figure beside."""
    return f"{n / 1e9:.2f} GB ({human(n)})" if n >= 1e8 else human(n)


def disk_usage(path):
    """Apparent size and allocated bytes of a file or directory."""
    files = [path] if os.path.isfile(path) else [os.path.join(path, f) for f in os.listdir(path)]
    app = alloc = 0
    for f in files:
        st = os.stat(f)
        app += st.st_size
        alloc += st.st_blocks * 512
    return app, alloc


def read_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            w, r, c = line.split()
            runs.append((float(w), int(r), float(c)))
    return runs


def main(bench_dir):
    raw = os.path.join(bench_dir, "raw")
    rows, qa = [], {}
    with open(os.path.join(raw, "index.tsv")) as f:
        for line in f:
            case, tool, data, runs_file, out_file = line.rstrip("\n").split("\t")
            runs = read_runs(runs_file)
            m = {"case": case, "tool": tool, "data": data, "runs": runs,
                 "wall": statistics.median(r[0] for r in runs), "best": min(r[0] for r in runs),
                 "rss": statistics.median(r[1] for r in runs) * 1024, "rss_max": max(r[1] for r in runs) * 1024,
                 "cpu": statistics.median(r[2] for r in runs)}
            if tool == "qinsaudit":
                with open(out_file) as g:
                    rep = json.load(g)
                m["tensors"] = rep["totals"]["tensors"]
                m["stored"] = rep["totals"]["stored_bytes"]
                m["inproc"] = None
                qa[case] = m
            else:
                with open(out_file) as g:
                    lines = [json.loads(x) for x in g if x.strip()]
                m["tensors"] = lines[-1]["tensors"]
                m["stored"] = lines[-1]["stored_bytes"]
                m["inproc"] = statistics.median(x["total_s"] for x in lines)
                m["load"] = statistics.median(x["load_s"] + x["sum_s"] for x in lines)
            rows.append(m)

    out = []
    env = open(os.path.join(raw, "env.txt")).read().strip()
    out.append("# qinsaudit audit: performance results\n")
    out.append("```\n" + env + "\n```\n")
    out.append("## Measurements\n")
    out.append("Median of the runs (best run in parentheses). Wall and CPU (user + sys) are "
               "for the whole process, from fork to exit, start-up included; peak RSS is the "
               "process's ru_maxrss. \"in-process\" is the baseline script's own time from its "
               "first line to its end (interpreter start-up excluded), and, after the slash, "
               "the part spent loading and summing (`import torch` excluded).\n")
    out.append("| case | data: apparent / on disk | tool | runs | wall | CPU | peak RSS | in-process | tensors, stored bytes: check |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    for m in rows:
        app, alloc = disk_usage(m["data"])
        q = qa.get(m["case"])
        ok = q is not None and m["tensors"] == q["tensors"] and m["stored"] == q["stored"]
        check = f"{m['tensors']:,}, {m['stored']:,} " + ("ok" if ok else "**MISMATCH**")
        inproc = "-" if m["inproc"] is None else f"{ms(m['inproc'])} / {ms(m['load'])}"
        out.append(f"| {CASES[m['case']]} | {size(app)} / {size(alloc)} | {TOOLS[m['tool']]} | {len(m['runs'])} | "
                   f"{ms(m['wall'])} ({ms(m['best'])}) | {ms(m['cpu'])} | {human(int(m['rss']))} | {inproc} | {check} |")

    out.append("\n## Ratios (baseline / qinsaudit, medians)\n")
    out.append("| case | baseline | wall | CPU | peak RSS |")
    out.append("|---|---|---:|---:|---:|")
    for m in rows:
        q = qa.get(m["case"])
        if m["tool"] == "qinsaudit" or q is None:
            continue
        out.append(f"| {CASES[m['case']]} | {TOOLS[m['tool']]} | {m['wall'] / q['wall']:,.0f}x | "
                   f"{m['cpu'] / q['cpu']:,.0f}x | {m['rss'] / q['rss']:,.1f}x |")

    out.append("\n## Targets (issue 2, Performance)\n")
    out.append("| target | measured (median) | met |")
    out.append("|---|---|---|")

    def target(name, value, ok):
        out.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")

    for case in ("a", "b1", "b2"):
        q = qa.get(case)
        if not q:
            continue
        label = SHORT[case]
        target(f"{label}: qinsaudit wall < 20 ms", ms(q["wall"]), q["wall"] < 0.020)
        target(f"{label}: qinsaudit peak RSS < 30 MiB", human(int(q["rss"])), q["rss"] < 30 * MIB)
        for m in rows:
            if m["case"] == case and m["tool"] in ("torch-load", "st-load"):
                target(f"{label}: >= 1000x faster than {m['tool']}",
                       f"{m['wall'] / q['wall']:,.0f}x wall ({m['cpu'] / q['cpu']:,.0f}x CPU)", m["wall"] / q["wall"] >= 1000)
                target(f"{label}: >= 100x leaner than {m['tool']}", f"{m['rss'] / q['rss']:,.1f}x", m["rss"] / q["rss"] >= 100)
    q = qa.get("c")
    if q:
        target("c. 2,000 tensors: qinsaudit wall a few ms (read: < 10 ms)", ms(q["wall"]), q["wall"] < 0.010)

    gb = os.path.join(raw, "gobench.txt")
    if os.path.exists(gb):
        lines = [x for x in open(gb).read().splitlines() if x.startswith("Benchmark")]
        if lines:
            out.append("\n## In-process (go test -bench BenchmarkOpenAudit -benchmem ./loaders)\n")
            out.append("loaders.Open + accounting.Audit, no process start-up, no rendering.\n")
            out.append("```")
            out.extend(lines)
            out.append("```")

    text = "\n".join(out) + "\n"
    with open(os.path.join(bench_dir, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
