"""The style task's summary (stage ``style_summary``): every Gatys pair and the fast transformer side by side,
graded by the one judge, and the speed of one forward pass against an L-BFGS optimisation at the same size."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.plots import md_table
from dlpipe.tasks.style.params import PairsParams


def read(path: Path) -> dict:
    if not Path(path).is_file():
        raise DataError(f"{path}: metrics file not found (run its stage first)")
    return json.loads(Path(path).read_text())


def style_summary(*, gatys: Path, fast: Path, out: Path, pairs: PairsParams) -> dict:
    """results.md in ``out`` from ``gatys/<content>-<style>/metrics.json`` of every pair and the fast
    transformer's metrics; returns the mean judge grades per network and the speed-up."""
    runs = [read(Path(gatys) / f"{c}-{s}" / "metrics.json") for c in pairs.content for s in pairs.style]
    fs = read(fast)
    nets = list(runs[0]["networks"])
    rows = [[f"{r['content']} x {r['style']}", n, r["networks"][n]["style_fall"], r["networks"][n]["judge_content"],
             r["networks"][n]["seconds"]] for r in runs for n in nets]
    rows += [[f"{stem} x {fs['style']}", "fast transformer", g["style_fall"], g["judge_content"],
              fs["seconds_per_image"]] for stem, g in fs["photos"].items()]
    sizes = {r["size"] for r in runs}
    gatys_s = float(np.mean([r["networks"][nets[0]]["seconds"] for r in runs]))
    same = sizes == {fs["eval_size"]}
    text = md_table(["pair", "method", "judge: style fall", "judge: content", "seconds per image"], rows)
    text += (f"\nGatys ({nets[0]}, {runs[0]['size']}px) {gatys_s:.1f} s per image; fast transformer "
             f"{fs['seconds_per_image'] * 1000:.1f} ms at {fs['eval_size']}px: {gatys_s / fs['seconds_per_image']:.0f}x"
             f"{'' if same else ' (different sizes!)'}.\n")
    write_text(Path(out) / "results.md", text)
    per_net = {n: {"style_fall": round(float(np.mean([r["networks"][n]["style_fall"] for r in runs])), 4),
                   "judge_content": round(float(np.mean([r["networks"][n]["judge_content"] for r in runs])), 4)}
               for n in nets}
    return {"gatys": per_net, "fast_style": {"style_fall": fs["style_fall"], "judge_content": fs["judge_content"]},
            "gatys_seconds_per_image": round(gatys_s, 2), "fast_seconds_per_image": fs["seconds_per_image"],
            "speedup": round(gatys_s / fs["seconds_per_image"], 1), "same_size": same, "n_pairs": len(runs)}
