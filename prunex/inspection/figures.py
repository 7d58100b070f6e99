"""The papers' pictures, drawn with matplotlib (an optional extra): MaskConnect's connectivity grid (Fig. 2/3) and
active branches per module (Fig. 4), DGConv's groups per layer (Fig. 2/5) and over training (Fig. 6), SparseNet's
aggregation links and feature reuse (Fig. 3).

Every block, edge, bar and link carries an SVG id (``block-…``, ``edge-…``, ``layer-…``, ``link-…``) so that the
pictures can be checked by parsing them.
"""

from __future__ import annotations

from pathlib import Path

from prunex.inspection.structure import Connectivity, FeatureReuse, GateDynamics, GroupedLayer, SparseStageLinks

LIVE, DEAD, EDGE, EDGE_DEAD, ENDPOINT = "#43a047", "#d0d0d0", "#37474f", "#cfd8dc", "#e53935"


class PlottingUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlottingUnavailable('pictures need matplotlib: pip install "prunex[plots]"') from None
    plt.rcParams["svg.fonttype"] = "none"
    return plt


def _save(fig, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, dpi=130, bbox_inches="tight")
            paths.append(path)
    finally:
        _pyplot().close(fig)  # pyplot keeps every figure alive until it is closed
    return paths


ROW_GAP = 2.0  # vertical distance between modules: room for the K-of-C connections between them


def _connectivity_legend(ax, palette) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color=LIVE, label="block in use"),
        Patch(color=DEAD, label="pruned block (read by nobody)"),
        Line2D([], [], color=palette(0), lw=1.0, label="connection, coloured by the block it reads"),
        Line2D([], [], color=EDGE_DEAD, lw=0.5, ls="--", label="connection of a pruned block"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False)


def connectivity_figure(conn: Connectivity, stem: Path, formats=("svg", "png")) -> list[Path]:
    """Rows of C blocks (module 0 reads the stem, at the top; the classifier reads the last module, at the bottom);
    each arrow is a frozen K-of-C connection, coloured by the block it reads so that it can be traced; grey blocks
    are read by nobody (they are pruned), and so are their dashed connections."""
    plt = _pyplot()
    from matplotlib.patches import FancyArrowPatch

    c, rows = conn.cardinality, conn.modules
    palette = plt.get_cmap("tab10" if c <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(0.8 * c + 3.2, 1.25 * rows + 2.6))
    centre = (c - 1) / 2

    def y(i: float) -> float:
        return -ROW_GAP * i

    def arrow(src, dst, gid, live, colour):
        patch = FancyArrowPatch(
            src,
            dst,
            arrowstyle="-|>",
            mutation_scale=7,
            lw=1.0 if live else 0.5,
            color=colour if live else EDGE_DEAD,
            linestyle="-" if live else "--",
            alpha=0.9 if live else 0.6,
            zorder=1,
        )
        patch.set_gid(gid)
        ax.add_patch(patch)

    _connectivity_nodes(ax, conn, centre, y)
    for j in range(c):
        live = conn.active[0][j]
        arrow(
            (centre, y(-0.75) - 0.25), (j, y(0) + 0.3), f"edge-0-stem-{j}-{'active' if live else 'pruned'}", live, EDGE
        )
    for i, k, j in conn.edges():
        live = conn.active[i][j]
        gid = f"edge-{i}-{k}-{j}-{'active' if live else 'pruned'}"
        arrow((k, y(i - 1) - 0.3), (j, y(i) + 0.3), gid, live, palette(k % palette.N))
    for j, live in enumerate(conn.active[-1]):
        arrow((j, y(rows - 1) - 0.3), (centre, y(rows - 0.25) + 0.25), f"edge-head-{j}", live, EDGE)
    _connectivity_legend(ax, palette)
    ax.set_xlim(-2.2, c - 0.2)
    ax.set_ylim(y(rows) - 0.2, y(-1.2))
    ax.set_aspect("equal")
    ax.axis("off")
    live = sum(map(sum, conn.active))
    ax.set_title(
        f"learned connectivity: {rows} modules × C = {c}, K = {conn.fan_in}; {live} of {rows * c} blocks in use\n"
        f"block j of module i reads the K blocks of module i − 1 its arrows come from",
        fontsize=9,
    )
    return _save(fig, Path(stem), formats)


def _connectivity_nodes(ax, conn: Connectivity, centre: float, y) -> None:
    """The stem and the classifier as circles, each module's blocks as boxes (grey: read by nobody)."""
    from matplotlib.patches import Circle, Rectangle

    rows = conn.modules
    for gid, row, text in (("stem", -0.75, "stem"), ("head", rows - 0.25, "classifier (mean of the last C)")):
        end = Circle((centre, y(row)), 0.25, color=ENDPOINT, zorder=3)
        end.set_gid(gid)
        ax.add_patch(end)
        ax.text(centre + 0.4, y(row), text, va="center", fontsize=8)
    for i, active in enumerate(conn.active):
        ax.text(-0.75, y(i), f"module {i}", ha="right", va="center", fontsize=8)
        for j, live in enumerate(active):
            box = Rectangle((j - 0.3, y(i) - 0.3), 0.6, 0.6, color=LIVE if live else DEAD, zorder=2)
            box.set_gid(f"block-{i}-{j}-{'active' if live else 'pruned'}")
            ax.add_patch(box)
            ax.text(j, y(i), str(j), ha="center", va="center", fontsize=7, color="white", zorder=4)


def active_branches_figure(conn: Connectivity, stem: Path, formats=("svg", "png")) -> list[Path]:
    """Active blocks per module (MaskConnect Fig. 4)."""
    plt = _pyplot()
    counts = [sum(a) for a in conn.active]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(counts) + 2), 3))
    bars = ax.bar(range(len(counts)), counts, color=LIVE)  # numbered from 0, as `prunex inspect`'s table
    for i, (bar, n) in enumerate(zip(bars, counts, strict=True)):
        bar.set_gid(f"module-{i}-active-{n}")
    ax.axhline(conn.cardinality, color="grey", lw=0.8, ls="--", label=f"C = {conn.cardinality}")
    ax.set_xlabel("module (input → output)")
    ax.set_ylabel("active branches")
    ax.set_ylim(0, conn.cardinality + 0.5)
    ax.set_xticks(range(len(counts)))
    ax.set_title(f"active branches per module (fan-in K = {conn.fan_in})", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, Path(stem), formats)


def groups_figure(
    layers: list[GroupedLayer], stem: Path, deployed: list | None = None, formats=("svg", "png")
) -> list[Path]:
    """Learned group count per DGConv layer against its channel width (DGConv Fig. 2/5); with ``deployed``,
    the realisation the compiler chose next to it."""
    plt = _pyplot()
    n = len(layers)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.4 * n + 2), 3.2))
    width = 0.4 if deployed else 0.7
    bars = ax.bar(
        [i - (width / 2 if deployed else 0) for i in range(n)],
        [lay.groups for lay in layers],
        width,
        color="#1e88e5",
        label="learned groups",
    )
    for i, (bar, lay) in enumerate(zip(bars, layers, strict=True)):
        bar.set_gid(f"layer-{i}-groups-{lay.groups}")
    if deployed:
        values = [d if isinstance(d, int) else lay.groups for d, lay in zip(deployed, layers, strict=True)]
        dep = ax.bar([i + width / 2 for i in range(n)], values, width, color="#fb8c00", label="deployed groups")
        for i, (bar, d) in enumerate(zip(dep, deployed, strict=True)):
            bar.set_gid(f"deployed-{i}-{d}")
    ax.set_yscale("log", base=2)
    ax.set_ylim(0.7, 1.6 * max(lay.groups for lay in layers))  # bars start below 1 group, so 1 is visible
    ax.set_xticks(range(n))
    ax.set_xticklabels([str(lay.out_channels) for lay in layers], rotation=90, fontsize=7)
    ax.set_xlabel("channels of the DGConv layer (input → output)")
    ax.set_ylabel("groups")
    ax.set_title("learned groups per layer", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, Path(stem), formats)


def sparse_links_figure(stages: list[SparseStageLinks], stem: Path, formats=("svg", "png")) -> list[Path]:
    """Each stage: outputs 0 (the stage input) … N and the stage output; an arc from every output a layer
    aggregates to that layer."""
    plt = _pyplot()
    from matplotlib.patches import Circle, FancyArrowPatch

    fig, axes = plt.subplots(
        len(stages), 1, figsize=(max(5.0, 0.35 * stages[0].layers + 2), 1.6 * len(stages)), squeeze=False
    )
    for s, (stage, ax) in enumerate(zip(stages, axes[:, 0], strict=True)):
        n = stage.layers
        for node in range(n + 2):
            dot = Circle((node, 0), 0.18, color=ENDPOINT if node in (0, n + 1) else LIVE, zorder=3)
            dot.set_gid(f"node-{s}-{node}")
            ax.add_patch(dot)
        for dst, sources in enumerate(stage.links, start=1):
            for src in sources:
                arc = FancyArrowPatch(
                    (src, 0.2),
                    (dst, 0.2),
                    connectionstyle=f"arc3,rad={-0.15 - 0.02 * (dst - src)}",
                    arrowstyle="-|>",
                    mutation_scale=5,
                    lw=0.5,
                    color=EDGE,
                    zorder=1,
                )
                arc.set_gid(f"link-{s}-{src}-{dst}")
                ax.add_patch(arc)
        ax.set_xlim(-0.6, n + 1.6)
        ax.set_ylim(-0.5, 0.3 + 0.12 * (n + 1))
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"stage {s + 1}: {n} layers, offsets {stage.base}^k, {stage.mode}", fontsize=8)
    return _save(fig, Path(stem), formats)


def _cells(ax, values: list[list[float | None]], cmap, gid) -> None:
    """One square per value (row r at the top, column c), coloured by ``cmap``; None draws nothing."""
    from matplotlib.patches import Rectangle

    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if v is None:
                continue
            cell = Rectangle((c - 0.5, r - 0.5), 1, 1, color=cmap(v), lw=0)
            cell.set_gid(gid(r, c))
            ax.add_patch(cell)
    ax.set_xlim(-0.5, max(len(row) for row in values) - 0.5)
    ax.set_ylim(len(values) - 0.5, -0.5)


def _row_labels(ax, rows: int) -> None:
    """Rows numbered from 1 (at most about 12 labels)."""
    step = max(1, rows // 12)
    ax.set_yticks(range(0, rows, step))
    ax.set_yticklabels([str(r + 1) for r in range(0, rows, step)], fontsize=6)


def feature_reuse_figure(stages: list[FeatureReuse], stem: Path, formats=("svg", "png")) -> list[Path]:
    """Per concatenating stage, a square for every (layer ℓ, output j it reads): the mean |w| of ℓ's first conv over
    j's channels, relative to the largest in ℓ's row (SparseNet Fig. 3)."""
    plt = _pyplot()
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(stages), figsize=(3.4 * len(stages) + 0.6, 3.4), squeeze=False)
    for stage, ax in zip(stages, axes[0], strict=True):
        rows = []
        for row in stage.weights:
            top = max(v for v in row if v is not None) or 1.0
            rows.append([None if v is None else v / top for v in row])
        _cells(ax, rows, cmap, lambda r, c, s=stage.stage: f"reuse-{s}-{r + 1}-{c}")
        _row_labels(ax, len(rows))
        ax.set_aspect("equal")
        ax.set_xlabel("source output (0: stage input)", fontsize=7)
        ax.set_ylabel("target layer", fontsize=7)
        ax.set_title(f"stage {stage.stage + 1}", fontsize=8)
        ax.tick_params(labelsize=6)
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=axes[0].tolist(), shrink=0.8)
    bar.set_label("mean |w| / the row's largest", fontsize=7)
    fig.suptitle("feature reuse: how strongly each layer reads each output it aggregates", fontsize=9)
    return _save(fig, Path(stem), formats)


def gate_dynamics_figure(dynamics: GateDynamics, stem: Path, formats=("svg", "png")) -> list[Path]:
    """log2(groups) of every DGConv layer (rows) at the end of every epoch (columns), and ζ / o below where the
    run had a budget (DGConv Fig. 6)."""
    import math

    plt = _pyplot()
    cmap = plt.get_cmap("magma_r")
    layers = len(dynamics.groups[0])
    top = max(max(g) for g in dynamics.groups)
    scale = max(math.log2(top), 1.0)
    rows = [[math.log2(epoch[i]) / scale for epoch in dynamics.groups] for i in range(layers)]
    panels = 2 if dynamics.zeta_over_budget else 1
    fig, axes = plt.subplots(panels, 1, figsize=(max(4.0, 0.3 * len(dynamics.epochs) + 2), 0.2 * layers + 2.5))
    ax = axes[0] if panels == 2 else axes
    groups_at = {(i, e): dynamics.groups[e][i] for i in range(layers) for e in range(len(dynamics.epochs))}
    _cells(ax, rows, cmap, lambda r, c: f"groups-{dynamics.epochs[c]}-{r}-{groups_at[(r, c)]}")
    ax.set_xticks(range(len(dynamics.epochs)))
    ax.set_xticklabels([str(e) for e in dynamics.epochs], fontsize=6)
    _row_labels(ax, layers)
    ax.set_ylabel("DGConv layer", fontsize=7)
    ax.set_title("learned groups per layer over training (darker: more groups)", fontsize=9)
    bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=ax, shrink=0.8)
    bar.set_ticks([0, 1])
    bar.set_ticklabels(["1", str(top)])
    bar.set_label("groups (log scale)", fontsize=7)
    if panels == 2:
        axes[1].plot(dynamics.epochs, dynamics.zeta_over_budget, marker="o", ms=3, color="#1e88e5", gid="zeta")
        axes[1].axhline(1.0, color=ENDPOINT, lw=0.8, ls="--")
        axes[1].set_xlabel("epoch", fontsize=7)
        axes[1].set_ylabel("ζ / o", fontsize=7)
    return _save(fig, Path(stem), formats)
