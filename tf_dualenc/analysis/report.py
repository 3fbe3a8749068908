"""PNG figures and one self-contained HTML report comparing `EmbeddingAnalysis` results side by side."""

import base64
import html
import json
import os

import numpy as np

FIGURE_SIZE = (6.4, 4.8)  # inches; at DPI → 640 × 480 pixels
DPI = 100
RATIO_RANGE = (-1.0, 3.0)

_SUMMARY_ROWS = [
    ("top1_cosine_mean", "mean top-1 cosine"),
    ("top1_cosine_std", "std of top-1 cosine"),
    ("ratio_median", "median sim(q_i,q_j)/sim(q_i,p_j)"),
    ("ratio_iqr", "IQR of the ratio"),
    ("alignment_positive_minus_random", "alignment: cos(q,p+) − cos(q,p_rand)"),
    ("positive_cosine_mean", "mean cos(q, p+)"),
    ("random_pair_cosine_mean", "mean cos(q_i, p_j), i≠j"),
    ("centroid_distance", "distance between query and document centroids"),
    ("queries", "queries sampled"),
    ("documents", "documents sampled"),
]


def _figure():
    from tf_dualenc.extras import require

    matplotlib = require("matplotlib", feature="tf-dualenc analyze's figures")
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=FIGURE_SIZE, dpi=DPI)


def _save(plt, figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def plot_tsne(analysis, path, linked_pairs=30):
    plt, figure = _figure()
    axes = figure.add_subplot()
    n = len(analysis.queries)
    queries, documents = analysis.tsne[:n], analysis.tsne[n:]
    for k in range(min(linked_pairs, n)):
        axes.plot([queries[k, 0], documents[k, 0]], [queries[k, 1], documents[k, 1]], color="0.6", linewidth=0.6, zorder=1)
    axes.scatter(queries[:, 0], queries[:, 1], s=9, label="queries (query tower)", color="tab:blue", zorder=2)
    axes.scatter(documents[:, 0], documents[:, 1], s=9, label="positive documents (document tower)", color="tab:orange", zorder=2)
    axes.set_xlabel("t-SNE 1")
    axes.set_ylabel("t-SNE 2")
    axes.set_title(f"{analysis.name}: both towers ({min(linked_pairs, n)} pairs linked)")
    axes.legend(loc="best", fontsize=8)
    return _save(plt, figure, path)


def plot_top1(analyses, path):
    plt, figure = _figure()
    axes = figure.add_subplot()
    bins = np.linspace(min(a.top1_cosines.min() for a in analyses), 1.0, 40)
    for a in analyses:
        axes.hist(a.top1_cosines, bins=bins, histtype="step", linewidth=1.5, label=f"{a.name} (mean {a.summary['top1_cosine_mean']:.3f})")
    axes.set_xlabel("cosine(query, top-1 retrieved document)")
    axes.set_ylabel("queries")
    axes.set_title("Top-1 similarity distribution")
    axes.legend(loc="upper left", fontsize=8)
    return _save(plt, figure, path)


def plot_ratio(analyses, path):
    plt, figure = _figure()
    axes = figure.add_subplot()
    bins = np.linspace(*RATIO_RANGE, 81)
    for a in analyses:
        axes.hist(np.clip(a.ratios, *RATIO_RANGE), bins=bins, histtype="step", linewidth=1.5,
                  label=f"{a.name} (median {a.summary['ratio_median']:.2f})")
    axes.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
    axes.set_xlabel(f"sim(q_i, q_j) / sim(q_i, p_j), i ≠ j (clipped to [{RATIO_RANGE[0]:g}, {RATIO_RANGE[1]:g}])")
    axes.set_ylabel("pairs")
    axes.set_title("Same-tower vs cross-tower similarity")
    axes.legend(loc="upper right", fontsize=8)
    return _save(plt, figure, path)


def write_report(analyses, output_dir, *, title="Embedding-space analysis", context=None):
    """Writes tsne_<model>.png, top1_cosine.png, same_tower_ratio.png, summary.json and report.html; returns the paths."""
    if not analyses:
        raise ValueError("No analyses to report.")
    names = [a.name for a in analyses]
    if len(set(names)) != len(names):
        raise ValueError(f"Model names must be unique in one report; got {names}.")
    os.makedirs(output_dir, exist_ok=True)
    images = {f"t-SNE: {a.name}": plot_tsne(a, os.path.join(output_dir, f"tsne_{_slug(a.name)}.png")) for a in analyses}
    images["Top-1 cosine"] = plot_top1(analyses, os.path.join(output_dir, "top1_cosine.png"))
    images["Same-tower ratio"] = plot_ratio(analyses, os.path.join(output_dir, "same_tower_ratio.png"))
    summary = {"context": context or {}, "models": {a.name: a.summary for a in analyses}}
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    header = "".join(f"<th>{html.escape(a.name)}</th>" for a in analyses)
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{_fmt(a.summary[key])}</td>" for a in analyses) + "</tr>"
        for key, label in _SUMMARY_ROWS
    )
    context_rows = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in (context or {}).items())

    def embedded(path):
        with open(path, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")

    figures = "".join(
        f'<figure><img alt="{html.escape(label)}" src="data:image/png;base64,{embedded(path)}"><figcaption>{html.escape(label)}</figcaption></figure>'
        for label, path in images.items()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}figure{{display:inline-block;margin:1em}}</style></head>
<body><h1>{html.escape(title)}</h1><ul>{context_rows}</ul>
<table><tr><th></th>{header}</tr>{rows}</table>
<p>Ratio: sim(q_i,q_j)/sim(q_i,p_j) over random pairs i≠j — near 1.0 when queries sit among documents as documents do.
Alignment: mean cosine of a query to its positive minus to other queries' positives.</p>
{figures}</body></html>
"""
    report = os.path.join(output_dir, "report.html")
    with open(report, "w", encoding="utf-8") as f:
        f.write(page)
    return {"report": report, "images": images, "summary": os.path.join(output_dir, "summary.json")}


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)
