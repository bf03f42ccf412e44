"""One self-contained HTML page comparing runs (``equilibria report RUN_OR_EXPERIMENT_DIR... --out F``).

The page needs no server and no network: every figure is a PNG embedded as a data URL, drawn with
matplotlib (already a dependency, and what the markdown reports use, so the figures match). It holds:

- for an experiment directory (one written by ``equilibria experiment``), the claims table: each group
  against its baseline on each metric, the difference of the means of the best values with its 95%
  interval, Welch's p and the verdict (``equilibria.statistics``), as docs/RESULTS.md states them;
- the resolved configs side by side, the keys where they differ highlighted (all keys folded below);
- every logged metric against iterations and wall-clock time (mean and band over a group's seeds),
  with the best and final values and their intervals;
- the discriminator's diagnostics among those curves (output means and spreads, gradient norms at the
  generated samples, AdvAs's r and lambda, ACGD's CG iterations), and histograms of its outputs on real
  and generated samples from each group's last checkpoint;
- sample grids over training for each group's first run (the lens's view of real data too), shown at
  least 256 pixels wide with crisp pixels.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure

from equilibria import report
from equilibria.experiment import finished
from equilibria.statistics import mean_interval
from equilibria.training.config import dotted

EVAL_FIRST = ("eval/",)
DIAGNOSTICS = ("d_real", "d_fake", "d_real_std", "d_fake_std", "grad_norm_fake", "grad_norm_adv", "grad_norm_gen",
               "advas/r", "advas/lambda", "cg/iterations")
SAMPLES_PER_RUN = 6
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.differs td { background: #fff3c4; }
img.figure { max-width: 100%; }
img.samples { width: 256px; image-rendering: pixelated; margin: 0 0.5em 0.5em 0; }
figure { display: inline-block; margin: 0 0.5em 0.5em 0; }
figcaption { font-size: 0.8em; color: #555; }
.holds { color: #0a6b0a; font-weight: bold; } .fails { color: #a40000; font-weight: bold; }
.undecided { color: #8a6d00; font-weight: bold; }
"""


def find_runs(paths: Sequence[str | Path]) -> tuple[dict[str, list[Path]], list[Path], int]:
    """Group the runs under ``paths``: a run directory is its own group; in an experiment directory
    (``<group>/s<seed>`` subdirectories) each group is one, of its finished runs (done at the steps its
    ``experiment.json`` names, else at its config's). Returns (groups,
    experiment directories, unfinished experiment runs left out)."""
    groups: dict[str, list[Path]] = {}
    experiments, left_out = [], 0
    for path in map(Path, paths):
        if (path / "metrics.jsonl").is_file():
            groups.setdefault(path.name, []).append(path)
            continue
        runs = sorted(p.parent for p in path.glob("*/s*/metrics.jsonl"))
        if not runs:
            raise FileNotFoundError(f"report: {str(path)!r} is neither a run directory (metrics.jsonl) nor an "
                                    "experiment directory (<group>/s<seed>/metrics.jsonl)")
        experiments.append(path)
        # the steps each run is to reach (the experiment's, which may exceed its config's); older files have none
        targets = _experiment_info(path).get("steps", {})
        for run in runs:
            if finished(run, targets.get(f"{run.parent.name}/{run.name}")):
                groups.setdefault(run.parent.name, []).append(run)
            else:
                left_out += 1
    return groups, experiments, left_out


def _experiment_info(experiment: Path) -> dict:
    """The experiment directory's ``experiment.json`` (written with its report), or {} without one."""
    path = experiment / "experiment.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _img(source: str, alt: str, css: str = "figure") -> str:
    return f'<img class="{css}" src="{source}" alt="{html.escape(alt)}">'


def _file_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def configs_table(groups: dict[str, list[Path]]) -> str:
    """The resolved configs of each group's first run, side by side; differing keys first, highlighted."""
    configs = {}
    for name, runs in groups.items():
        path = runs[0] / "config.yaml"
        data = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        configs[name] = {key: json.dumps(value) for key, value in dotted(data).items()}
    keys = sorted(set().union(*configs.values()) - {"seed", "run_dir"})
    # a key some configs lack (written before it existed) differs only if the others disagree on it
    differs = [k for k in keys if len({c[k] for c in configs.values() if k in c}) > 1]

    def rows(selected: list[str], css: str) -> str:
        return "".join(f'<tr class="{css}"><td>{html.escape(k)}</td>'
                       + "".join(f"<td>{html.escape(c.get(k, '-'))}</td>" for c in configs.values()) + "</tr>"
                       for k in selected)

    head = "<tr><th>key</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in configs) + "</tr>"
    same = [k for k in keys if k not in differs]
    return (f"<table>{head}{rows(differs, 'differs')}</table>"
            f"<details><summary>the {len(same)} keys they share</summary><table>{head}{rows(same, 'same')}"
            "</table></details>")


def _metric_keys(groups: dict[str, list[Path]]) -> list[str]:
    keys: set[str] = set()
    for runs in groups.values():
        for run in runs:
            for record in report.load_metrics(run):
                keys.update(k for k, v in record.items()
                            if isinstance(v, (int, float)) and k not in report.CLOCK_KEYS)
    return sorted(keys, key=lambda k: (not k.startswith(EVAL_FIRST), k not in DIAGNOSTICS, k))


def _interval(values: Sequence[float]) -> str:
    i = mean_interval(values)
    return f"{i.mean:.4g}" if i.n < 2 else f"{i.mean:.4g} [{i.low:.4g}, {i.high:.4g}]"


def metric_section(groups: dict[str, list[Path]], key: str, log: bool = False) -> str:
    """``key``'s curves (on a log axis with ``log``: a metric an experiment compares by ratio) and table."""
    lower = not key.endswith(report.HIGHER_IS_BETTER)
    rows = report.summary(groups, key, lower_is_better=lower)
    figure = report.curves_figure(groups, key, title=key, log=log)
    table = "".join(f"<tr><td>{html.escape(r['group'])}</td><td>{r['runs']}</td><td>{_interval(r['bests'])}</td>"
                    f"<td>{_interval(r['finals'])}</td><td>{_interval(r['last_quarters'])}</td></tr>" for r in rows)
    note = ("lower is better" if lower else "higher is better") if key.startswith("eval/") else "a diagnostic"
    return (f"<h3>{html.escape(key)} <small>({note})</small></h3>{_img(_png(figure), key)}"
            f"<table><tr><th>group</th><th>seeds</th><th>best [95% CI]</th><th>final [95% CI]</th>"
            f"<th>last quarter's mean [95% CI]</th></tr>{table}"
            "</table>")


def claims_table(groups: dict[str, list[Path]], experiment: Path) -> str:
    """Each group against its baseline, from the experiment's ``experiment.json`` (written with its report)."""
    info = _experiment_info(experiment)
    if not info:
        return f"<p>{html.escape(str(experiment))}: no experiment.json (write it with <code>equilibria experiment " \
               "FILE --report-only</code>), so no baselines to compare with.</p>"
    lines = []
    for key in [m for m in info["metrics"] if m.startswith("eval/")]:
        lower = not key.endswith(report.HIGHER_IS_BETTER)
        ratio = key in info.get("ratio", [])  # reports written before the key existed have none
        steps = info.get("at", [])  # reports written before the key existed have none
        rows = {r["group"]: r for r in report.summary(groups, key, lower_is_better=lower, log=ratio, at=steps)}
        for group, baseline in report.pairs(info["baselines"]):
            if group not in rows or baseline not in rows:
                continue
            for name in [m for m in report.measures(rows[group]) if m == "best" or m.startswith("at step")]:
                c, verdict, note = report.compare_rows(rows[group], rows[baseline], name, lower)
                p = "n/a" if np.isnan(c.p_value) else f"{c.p_value:.2g}"
                note = f" <small>({html.escape(note)})</small>" if note else ""
                lines.append(f"<tr><td>{html.escape(group)} is better than {html.escape(baseline)} on "
                             f"{html.escape(key)} ({'best value' if name == 'best' else name})</td>"
                             f"<td>{report.comparison_text(c, ratio, 4)}</td><td>{p}</td>"
                             f"<td class=\"{verdict}\">{verdict}{note}</td>"
                             f"<td>{rows[group]['runs']} and {rows[baseline]['runs']} seeds</td>"
                             f"<td><code>{html.escape(info.get('command', ''))}</code></td></tr>")
    for key, level in info.get("reach", {}).items():  # reports written before the key existed have none
        lower = not key.endswith(report.HIGHER_IS_BETTER)
        times = report.reach_times(groups, key, level, lower)
        for group, baseline, unit, c in report.reach_comparisons(times, info["baselines"]):
            p = "n/a" if np.isnan(c.p_value) else f"{c.p_value:.2g} (Mann-Whitney)"
            reached = [f"{sum(map(np.isfinite, times[g][unit]))} of {len(times[g][unit])}" for g in (group, baseline)]
            lines.append(f"<tr><td>{html.escape(group)} reaches {html.escape(key)} {'&lt;=' if lower else '&gt;='} "
                         f"{level:g} in fewer {unit} than {html.escape(baseline)} (ratio of the medians)</td>"
                         f"<td>{report.comparison_text(c, True, 4)}</td><td>{p}</td>"
                         f"<td class=\"{c.verdict}\">{c.verdict}</td>"
                         f"<td>{reached[0]} and {reached[1]} seeds reached it</td>"
                         f"<td><code>{html.escape(info.get('command', ''))}</code></td></tr>")
    if not lines:
        return "<p>No group has a baseline in this experiment.</p>"
    return ("<table><tr><th>claim</th><th>ours: difference of the means, or xratio of the geometric means (of the "
            "median times to reach a level) [95% CI]</th><th>p (Welch, unless named)</th>"
            "<th>verdict</th><th>setting</th><th>command</th></tr>" + "".join(lines) + "</table>")


def _sample_files(run: Path) -> dict[str, list[Path]]:
    """The run's sample images by kind ("samples", "lens", ...), in step order, at most SAMPLES_PER_RUN each."""
    kinds: dict[str, list[Path]] = {}
    for path in sorted((run / "samples").glob("*step-*.png")):
        kind = path.name.split("step-")[0].rstrip("-") or "samples"
        kinds.setdefault(kind, []).append(path)
    for kind, paths in kinds.items():
        if len(paths) > SAMPLES_PER_RUN:
            picks = np.linspace(0, len(paths) - 1, SAMPLES_PER_RUN).round().astype(int)
            kinds[kind] = [paths[i] for i in sorted(set(picks))]
    return kinds


def samples_section(groups: dict[str, list[Path]]) -> str:
    parts = []
    for name, runs in groups.items():
        for kind, paths in _sample_files(runs[0]).items():
            cells = "".join(f"<figure>{_img(_file_data_url(p), f'{name} {p.stem}', 'samples')}"
                            f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in paths)
            parts.append(f"<h3>{html.escape(name)}: {html.escape(kind)} ({html.escape(runs[0].name)})</h3>{cells}")
    return "".join(parts) or "<p>No sample images (archived runs keep none).</p>"


def histograms_section(groups: dict[str, list[Path]], samples: int = 512) -> str:
    """The discriminator's raw outputs on real and generated samples, from each group's last checkpoint."""
    parts = []
    for name, runs in groups.items():
        outputs = discriminator_outputs(runs[0], samples)
        if outputs is None:
            parts.append(f"<p>{html.escape(name)}: no checkpoint to read the discriminator from.</p>")
            continue
        real, fake = outputs
        figure = Figure(figsize=(5, 3))
        ax = figure.subplots()
        bins = np.linspace(min(real.min(), fake.min()), max(real.max(), fake.max()) + 1e-9, 40)
        ax.hist(real, bins=bins, alpha=0.6, label="real")
        ax.hist(fake, bins=bins, alpha=0.6, label="generated")
        ax.set_xlabel("D's raw output")
        ax.set_title(f"{name} ({runs[0].name})")
        ax.legend(fontsize=8)
        figure.tight_layout()
        parts.append(_img(_png(figure), f"{name} output histogram"))
    return "".join(parts)


def discriminator_outputs(run: Path, samples: int) -> tuple[np.ndarray, np.ndarray] | None:
    """D's outputs on ``samples`` real and generated samples at the run's last checkpoint, or None."""
    import torch

    from equilibria.training import checkpoint
    from equilibria.training.build import build_networks, dataset_of
    from equilibria.training.run import load_run_config

    if not checkpoint.checkpoints(run / "checkpoints"):
        return None
    config = load_run_config(run)
    state, _, _ = checkpoint.load_latest(run / "checkpoints")
    generator, discriminator = build_networks(config, state.sample_shape)
    generator.load_state_dict(state.generator_weights())
    discriminator.load_state_dict(state.trainer["discriminator"])
    dataset = dataset_of(config)
    n = min(samples, len(dataset))
    with torch.no_grad():
        generator.eval(), discriminator.eval()
        real = dataset.data[torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]]
        if dataset.kind == "image":
            low, high = generator.output_range or (-1.0, 1.0)
            real = real.float() / 255 * (high - low) + low
        fake = generator(torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(1)))
        return discriminator(real.float()).numpy(), discriminator(fake).numpy()


def write_page(paths: Sequence[str | Path], out: str | Path, title: str | None = None) -> Path:
    """Write the page comparing the runs under ``paths`` to ``out``; returns its path."""
    groups, experiments, left_out = find_runs(paths)
    if not groups:
        raise FileNotFoundError(f"report: no finished run under {', '.join(map(str, paths))}")
    title = title or "equilibria: " + ", ".join(Path(p).name for p in paths)
    sections = [f"<h1>{html.escape(title)}</h1>",
                "<p>" + ", ".join(f"{html.escape(n)}: {len(r)} run{'s' * (len(r) > 1)}" for n, r in groups.items())
                + (f"; {left_out} unfinished experiment runs left out" if left_out else "") + "</p>"]
    for experiment in experiments:
        sections += [f"<h2>Claims: {html.escape(experiment.name)}</h2>", claims_table(groups, experiment)]
    sections += ["<h2>Configs</h2>", configs_table(groups), "<h2>Metrics and diagnostics</h2>"]
    ratio = {key for experiment in experiments for key in _experiment_info(experiment).get("ratio", [])}
    sections += [metric_section(groups, key, log=key in ratio) for key in _metric_keys(groups)]
    sections += ["<h2>Discriminator outputs</h2>", histograms_section(groups),
                 "<h2>Samples over training</h2>", samples_section(groups)]
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
