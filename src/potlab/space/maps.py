"""2-D maps of chemical space: PCA, t-SNE and UMAP of compositional embeddings.

Seed 001's Figures 2-5: a seeded sample (3000 per category by default) of one order is
embedded with each element embedding, reduced to 2-D with each method and drawn as a
grid (rows: embeddings, columns: methods), coloured by category (standard blue,
missing red, interesting green, unlikely grey) or by anion class (pnictide, halide,
chalcogenide, oxide, other). Each panel is also written as an interactive HTML map
whose hover shows formula and category. Figure 1, a periodic-table heat map of element
frequencies in allowed binaries, is :func:`periodic_table_heatmap`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from potlab.space.counting import build_index
from potlab.space.embeddings import EMBEDDINGS, embed
from potlab.space.enumeration import formulas, sample
from potlab.space.known import CATEGORIES, KnownList, read_known
from potlab.space.species import DEFAULT_OXIDATION_STATES, SpaceError, Species
from potlab.space.stoichiometry import check_order

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")
CATEGORY_COLOURS = {
    "standard": "#1f77b4",
    "missing": "#d62728",
    "interesting": "#2ca02c",
    "unlikely": "#9e9e9e",
}
ANION_CLASSES = ("pnictide", "halide", "chalcogenide", "oxide", "other")
ANION_COLOURS = {
    "pnictide": "#e6b800",
    "halide": "#1f77b4",
    "chalcogenide": "#d62728",
    "oxide": "#2ca02c",
    "other": "#9e9e9e",
}
_ANION_OF = {
    **{s: "pnictide" for s in ("N", "P", "As", "Sb", "Bi")},
    **{s: "halide" for s in ("F", "Cl", "Br", "I", "At")},
    **{s: "chalcogenide" for s in ("S", "Se", "Te", "Po")},
    "O": "oxide",
}


def anion_class(species: Species, elements: np.ndarray) -> np.ndarray:
    """Anion class of each composition from its most electronegative element [m] (str).

    Elements are sorted by electronegativity, so that is the last filterable one.
    """
    elements = np.atleast_2d(elements)
    finite = np.isfinite(species.eneg[elements])
    last = np.where(finite, np.arange(elements.shape[1])[None, :], -1).max(axis=1)
    anion = elements[np.arange(len(elements)), np.maximum(last, 0)]
    classes = np.array([_ANION_OF.get(s, "other") for s in species.symbols], dtype=object)
    out = classes[anion]
    out[last < 0] = "other"
    return out


def reduce_2d(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """Project [m, dim] vectors to [m, 2] with ``pca``, ``tsne`` or ``umap`` (seeded)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(vectors) - 1) / 3)))
        return TSNE(
            n_components=2, random_state=seed, perplexity=perplexity, init="pca"
        ).fit_transform(vectors)
    if method == "umap":
        import umap

        n_neighbors = int(min(15, max(2, len(vectors) - 1)))
        return umap.UMAP(
            n_components=2, random_state=seed, n_neighbors=n_neighbors, n_jobs=1
        ).fit_transform(vectors)
    raise SpaceError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def sample_categories(
    order: int,
    n_per_category: int = 3000,
    *,
    seed: int = 0,
    known: KnownList | None = None,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
) -> dict:
    """A seeded sample of each of the four categories.

    Returns dict with ``elements`` [m, k], ``factors`` [m, k], ``category`` [m] (str),
    ``formula`` [m] (str), ``anion`` [m] (str) and ``species``.
    """
    known = known if known is not None else read_known(oxidation_states=oxidation_states)
    known.require_order(order)
    index = build_index(order, max_factor, oxidation_states)
    els, fac, cat = [], [], []
    for i, c in enumerate(CATEGORIES):
        e, f = sample(
            order,
            c,
            n_per_category,
            seed=seed + i,
            known=known,
            max_factor=max_factor,
            oxidation_states=oxidation_states,
        )
        els.append(e)
        fac.append(f)
        cat += [c] * len(e)
    els, fac = np.concatenate(els), np.concatenate(fac)
    return {
        "elements": els,
        "factors": fac,
        "category": np.array(cat, dtype=object),
        "formula": formulas(index.species, els, fac),
        "anion": anion_class(index.species, els),
        "species": index.species,
    }


def make_maps(
    order: int = 2,
    out: str | Path = "maps",
    *,
    embeddings: tuple[str, ...] | list[str] = EMBEDDINGS,
    methods: tuple[str, ...] | list[str] = METHODS,
    n_per_category: int = 3000,
    seed: int = 0,
    known: KnownList | None = None,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
    html: bool = True,
) -> dict:
    """Figures 2-5 for one order: PNG grids coloured by category and by anion class,
    one HTML map per panel, and ``points.csv`` with every 2-D coordinate.

    Returns a dict with ``png`` (paths), ``html`` (paths), ``csv``, ``n_points``
    (per category), ``dropped`` (per embedding) and ``snapshot``.
    """
    import pandas as pd

    order = check_order(order)
    for m in methods:
        if m not in METHODS:
            raise SpaceError(f"unknown method {m!r}: choose from {', '.join(METHODS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    known = known if known is not None else read_known(oxidation_states=oxidation_states)
    data = sample_categories(
        order,
        n_per_category,
        seed=seed,
        known=known,
        max_factor=max_factor,
        oxidation_states=oxidation_states,
    )
    panels: dict[tuple[str, str], np.ndarray] = {}
    kept_masks: dict[str, np.ndarray] = {}
    dropped: dict[str, int] = {}
    rows = []
    for name in embeddings:
        emb = embed(name, data["species"], data["elements"], data["factors"])
        kept_masks[name], dropped[name] = emb.kept, emb.n_dropped
        for method in methods:
            xy = reduce_2d(emb.vectors, method, seed)
            panels[(name, method)] = xy
            idx = np.flatnonzero(emb.kept)
            rows.append(
                pd.DataFrame(
                    {
                        "embedding": name,
                        "method": method,
                        "formula": data["formula"][idx],
                        "category": data["category"][idx],
                        "anion": data["anion"][idx],
                        "x": xy[:, 0],
                        "y": xy[:, 1],
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    csv = out / f"points_order{order}.csv"
    table.to_csv(csv, index=False)
    png = []
    for colour_by, palette in (("category", CATEGORY_COLOURS), ("anion", ANION_COLOURS)):
        path = out / f"map_order{order}_{colour_by}.png"
        _grid_png(path, table, list(embeddings), list(methods), colour_by, palette, order)
        png.append(str(path))
    html_paths = []
    if html:
        for name, method in panels:
            sub = table[(table.embedding == name) & (table.method == method)]
            path = out / f"map_order{order}_{name}_{method}.html"
            _panel_html(path, sub, f"{name} / {method} (order {order})")
            html_paths.append(str(path))
    counts = {c: int((data["category"] == c).sum()) for c in CATEGORIES}
    return {
        "png": png,
        "html": html_paths,
        "csv": str(csv),
        "n_points": counts,
        "dropped": dropped,
        "snapshot": known.description,
    }


def _grid_png(path, table, embeddings, methods, colour_by, palette, order):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    nr, nc = len(embeddings), len(methods)
    fig, axes = plt.subplots(nr, nc, figsize=(3.2 * nc, 3.0 * nr), squeeze=False)
    for r, name in enumerate(embeddings):
        for c, method in enumerate(methods):
            ax = axes[r][c]
            sub = table[(table.embedding == name) & (table.method == method)]
            # unlikely/other first so the rare categories stay visible on top
            for label in reversed(list(palette)):
                pts = sub[sub[colour_by] == label]
                ax.scatter(
                    pts.x, pts.y, s=3, c=palette[label], alpha=0.6, linewidths=0, rasterized=True
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(method.upper() if method != "tsne" else "t-SNE")
            if c == 0:
                ax.set_ylabel(name)
    handles = [Line2D([], [], marker="o", ls="", color=v, label=k) for k, v in palette.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(palette), frameon=False)
    fig.suptitle(f"order {order} compositions, coloured by {colour_by}")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _panel_html(path, sub, title):
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, colour in CATEGORY_COLOURS.items():
        pts = sub[sub.category == label]
        fig.add_trace(
            go.Scattergl(
                x=pts.x,
                y=pts.y,
                mode="markers",
                name=label,
                marker={"size": 4, "color": colour},
                customdata=np.stack([pts.category, pts.anion], axis=-1) if len(pts) else None,
                text=pts.formula,
                hovertemplate="%{text}<br>%{customdata[0]}<br>anion: %{customdata[1]}<extra></extra>",
            )
        )
    fig.update_layout(title=title, template="simple_white", width=800, height=700)
    # plotly.js is written once beside the maps: the pages work offline
    fig.write_html(path, include_plotlyjs="directory")


def _table_position(z: int) -> tuple[int, int]:
    """(row, column) of element Z in a periodic table with f-block rows 8 and 9."""
    if 57 <= z <= 71:
        return 8, z - 57 + 3
    if 89 <= z <= 103:
        return 9, z - 89 + 3
    ends = [0, 2, 10, 18, 36, 54, 86, 118]
    period = next(p for p in range(1, 8) if z <= ends[p])
    pos = z - ends[period - 1]
    if period == 1:
        return 1, 1 if z == 1 else 18
    if period in (2, 3):
        return period, pos if pos <= 2 else pos + 10
    if period in (4, 5):
        return period, pos
    return period, pos if pos <= 2 else pos - 14


def periodic_table_heatmap(frequencies: dict[str, int], out: str | Path, *, title: str = "") -> str:
    """Figure 1: periodic table coloured by each element's frequency (number below symbol)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from smact import Element

    fig, ax = plt.subplots(figsize=(13, 7.5))
    values = np.array(list(frequencies.values()), dtype=float)
    vmax = values.max() if len(values) and values.max() > 0 else 1.0
    cmap = plt.get_cmap("viridis")
    for sym, freq in frequencies.items():
        row, col = _table_position(Element(sym).number)
        y = row + (0.5 if row >= 8 else 0)
        colour = cmap(freq / vmax) if freq > 0 else (0.93, 0.93, 0.93, 1)
        ax.add_patch(plt.Rectangle((col - 0.48, -y - 0.48), 0.96, 0.96, color=colour))
        text_colour = "white" if freq > 0 and freq / vmax < 0.6 else "black"
        ax.text(
            col,
            -y + 0.12,
            sym,
            ha="center",
            va="center",
            fontsize=9,
            weight="bold",
            color=text_colour,
        )
        ax.text(
            col, -y - 0.25, str(freq), ha="center", va="center", fontsize=6.5, color=text_colour
        )
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(-10.1, -0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, vmax))
    fig.colorbar(
        sm, ax=ax, fraction=0.02, pad=0.01, label="allowed compositions containing the element"
    )
    ax.set_title(title or "Element frequency in allowed compositions")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return str(out)
