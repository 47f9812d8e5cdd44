"""The PNG bar chart, drawn by gnuplot."""

import shutil
from pathlib import Path

from .common import REFERENCE, bench_mode, is_idle, rate_of
from .processes import run_quiet


def chart(results, workloads, png, tmp):
    """Bar charts, two rows, with gnuplot; returns a reason string if skipped."""
    if not shutil.which("gnuplot"):
        return "gnuplot not installed (gnuplot-nox)"
    rate_label = {"greeting": "connections/s", "echo": "round trips/s", "stream": "MB/s sent"}
    panels = []
    for w in workloads:
        for metric, label in (("rate", rate_label.get(bench_mode(w))), ("cpu", "server CPU µs/op (lower is better)")):
            if is_idle(w) and metric == "cpu":
                metric, label = "bpc", "server bytes per idle connection"
            elif is_idle(w):
                continue
            rows = []
            for r in results:
                if r["workload"] != w or r["status"] != "ok":
                    continue
                d = r["data"]
                value = {"rate": rate_of(w, d),
                         "cpu": d.get("server_cpu_us_per_op"), "bpc": d.get("server_bytes_per_conn")}[metric]
                if value is not None:
                    rows.append((r["server"], value))
            if rows:
                panels.append((f"{w}: {label}", rows, REFERENCE[w]))
    if not panels:
        return "no results to plot"
    # Two rows for a few workloads; beyond eight panels (the TLS and
    # balancing workloads together) four columns and as many rows of 450
    # pixels as it takes, so that titles do not run into each other.
    few = len(panels) <= 8
    cols = (len(panels) + 1) // 2 if few else 4
    layout_rows = min(2, len(panels)) if few else (len(panels) + cols - 1) // cols
    size = f"1400,{900 if few else 450 * layout_rows}"
    script = [f"set terminal pngcairo size {size} font 'sans,10'", f"set output '{png}'",
              f"set multiplot layout {layout_rows},{cols}", "set style fill solid 0.8", "set boxwidth 0.6",
              "set grid ytics", "unset key", "set yrange [0:*]", "set xtics rotate by -30"]
    for i, (title, rows, ref) in enumerate(panels):
        data = Path(tmp) / f"chart{i}.dat"
        # porticod in orange, the floor (or "direct") in grey, peers in blue
        colour = {ref: 0x888888, "porticod": 0xE6801A}
        data.write_text("".join(f'"{name}" {value} {colour.get(name, 0x3B75AF)}\n' for name, value in rows))
        script += [f"set title '{title}'", f"plot '{data}' using 0:2:3:xtic(1) with boxes lc rgb variable"]
    script.append("unset multiplot")
    gp = Path(tmp) / "chart.gp"
    gp.write_text("\n".join(script) + "\n")
    rc, out = run_quiet(["gnuplot", str(gp)], 60)
    if rc != 0 and "pngcairo" in out:  # a gnuplot built without cairo
        gp.write_text(gp.read_text().replace(f"pngcairo size {size} font 'sans,10'", f"png size {size}"))
        rc, out = run_quiet(["gnuplot", str(gp)], 60)
    return None if rc == 0 else f"gnuplot failed: {out[-300:]}"
