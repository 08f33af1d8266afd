"""Run a study YAML (by default the bundled Li3PS4 one) and write ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from potlab.analysis.errors import evaluate
from potlab.data import read_frames
from potlab.potential import load
from potlab.report.plots import parity_plot, training_curve
from potlab.train import parse_config, train

DEFAULT_STUDY = Path(__file__).with_name("default.yaml")


def run_default_study(out: str | Path = "runs/demo", study: str | Path = DEFAULT_STUDY,
                      max_time: float | None = None) -> Path:
    """Train every model of the study, evaluate on its test file, write the report.

    Re-running resumes each model's run directory. Returns the report path.
    """
    study = Path(study)
    spec = yaml.safe_load(study.read_text())
    base = study.parent
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    test_path = base / spec["test"]
    for model in spec["models"]:
        name = model["name"]
        training = dict(spec.get("training", {}))
        if max_time is not None:
            training["max_time"] = max_time
        cfg = parse_config(
            {"data": spec["data"], "model": model, "training": training, "out": str(out / name)},
            source=f"{study}:models[{name}]", base=base,
        )
        res = train(cfg)
        pot = load(res.out / "model.pt")
        frames = read_frames(test_path, energy_key=spec["data"].get("energy_key", "REF_energy"),
                             forces_key=spec["data"].get("forces_key", "REF_forces"))
        metrics, arrays = evaluate(pot, frames)
        m = metrics["overall"]
        parity_plot(arrays, res.out / "parity_test.png", title=f"{name}: Li3PS4 test", metrics=m)
        training_curve(res.out / "metrics.csv", res.out / "training_curve.png", title=name)
        (res.out / "eval_test.json").write_text(json.dumps(metrics, indent=1))
        n_params = sum(p.numel() for p in pot.parameters())
        rows.append({"model": name, "params": n_params, **m, "epochs": res.epochs,
                     "train_s": res.metrics["elapsed_s"], "stop": res.stop_reason})
    report = out / "report.md"
    report.write_text(_report(spec, rows, test_path))
    return report


def _report(spec: dict, rows: list[dict[str, Any]], test_path: Path) -> str:
    lines = [
        f"# potlab study: {spec.get('name', 'study')}",
        "",
        (f"Test set: `{test_path.name}` ({rows[0]['n_frames'] if rows else 0} frames). "
         "Energies per atom, forces per Cartesian component; every model trained by the same "
         "trainer on the same data and split."),
        "",
        ("| model | parameters | epochs | train time (s) | E MAE (meV/atom) | E RMSE (meV/atom) "
         "| F MAE (meV/Å) | F RMSE (meV/Å) | F R² |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['epochs']} | {r['train_s']:.0f} "
            f"| {r['energy_mae_mev_per_atom']:.2f} | {r['energy_rmse_mev_per_atom']:.2f} "
            f"| {r['forces_mae_mev_per_a']:.1f} | {r['forces_rmse_mev_per_a']:.1f} | {r['forces_r2']:.4f} |"
        )
    lines += ["", "## Parity plots", ""]
    for r in rows:
        lines.append(f"![{r['model']}]({r['model']}/parity_test.png)")
    lines += ["", "## Training curves", ""]
    for r in rows:
        lines.append(f"![{r['model']}]({r['model']}/training_curve.png)")
    lines += ["", ("Data: Li3PS4 sample from metatensor/Workshop-spring-2025 (MIT), "
                   "see `potlab/studies/data/li3ps4/SOURCE.md`."), ""]
    return "\n".join(lines)
