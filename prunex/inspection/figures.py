"""The papers' pictures, drawn with matplotlib (an optional extra): MaskConnect's connectivity grid (Fig. 2/3) and
active branches per module (Fig. 4), DGConv's groups per layer (Fig. 2/5), SparseNet's aggregation links.

Every block, edge, bar and link carries an SVG id (``block-…``, ``edge-…``, ``layer-…``, ``link-…``) so that the
pictures can be checked by parsing them.
"""

from __future__ import annotations

from pathlib import Path

from prunex.inspection.structure import Connectivity, GroupedLayer, SparseStageLinks

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


def connectivity_figure(conn: Connectivity, stem: Path, formats=("svg", "png")) -> list[Path]:
    """Rows of C blocks, stem on top and classifier at the bottom; arrows are the frozen K-of-C connections;
    grey blocks are read by nobody (they are pruned)."""
    plt = _pyplot()
    from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

    c, rows = conn.cardinality, conn.modules
    fig, ax = plt.subplots(figsize=(0.75 * c + 1.5, 0.75 * rows + 2))
    centre = (c - 1) / 2

    def arrow(src, dst, gid, live):
        patch = FancyArrowPatch(
            src,
            dst,
            arrowstyle="-|>",
            mutation_scale=7,
            lw=0.8 if live else 0.5,
            color=EDGE if live else EDGE_DEAD,
            linestyle="-" if live else "--",
            zorder=1,
        )
        patch.set_gid(gid)
        ax.add_patch(patch)

    source = Circle((centre, 1.0), 0.25, color=ENDPOINT, zorder=3)
    source.set_gid("stem")
    ax.add_patch(source)
    head = Circle((centre, -rows), 0.25, color=ENDPOINT, zorder=3)
    head.set_gid("head")
    ax.add_patch(head)
    for i, active in enumerate(conn.active):
        for j, live in enumerate(active):
            box = Rectangle((j - 0.3, -i - 0.3), 0.6, 0.6, color=LIVE if live else DEAD, zorder=2)
            box.set_gid(f"block-{i}-{j}-{'active' if live else 'pruned'}")
            ax.add_patch(box)
    for j in range(c):
        arrow(
            (centre, 0.75),
            (j, 0.3),
            f"edge-0-stem-{j}-{'active' if conn.active[0][j] else 'pruned'}",
            conn.active[0][j],
        )
    for i, k, j in conn.edges():
        live = conn.active[i][j]
        arrow((k, -(i - 1) - 0.3), (j, -i + 0.3), f"edge-{i}-{k}-{j}-{'active' if live else 'pruned'}", live)
    for j, live in enumerate(conn.active[-1]):
        arrow((j, -(rows - 1) - 0.3), (centre, -rows + 0.25), f"edge-head-{j}", live)
    ax.set_xlim(-0.8, c - 0.2)
    ax.set_ylim(-rows - 0.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    live = sum(map(sum, conn.active))
    ax.set_title(
        f"learned connectivity: {rows} modules × C = {c}, K = {conn.fan_in}; {live} of {rows * c} blocks in use",
        fontsize=9,
    )
    return _save(fig, Path(stem), formats)


def active_branches_figure(conn: Connectivity, stem: Path, formats=("svg", "png")) -> list[Path]:
    """Active blocks per module (MaskConnect Fig. 4)."""
    plt = _pyplot()
    counts = [sum(a) for a in conn.active]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(counts) + 2), 3))
    bars = ax.bar(range(1, len(counts) + 1), counts, color=LIVE)
    for i, (bar, n) in enumerate(zip(bars, counts, strict=True)):
        bar.set_gid(f"module-{i}-active-{n}")
    ax.axhline(conn.cardinality, color="grey", lw=0.8, ls="--", label=f"C = {conn.cardinality}")
    ax.set_xlabel("module (input → output)")
    ax.set_ylabel("active branches")
    ax.set_ylim(0, conn.cardinality + 0.5)
    ax.set_xticks(range(1, len(counts) + 1))
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
