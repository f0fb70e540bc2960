"""The documentation's pictures, drawn from the NumPy oracle at build time.

Every function returns PNG bytes. Nothing here is committed: the ``dropblock_docs`` hook
calls :func:`all_figures` and adds the images to the site as generated files. The random
draws use fixed seeds, so two builds give the same pictures.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from dropblock_conformance import oracle
from dropblock_core import clamp_block, gamma, normalize_block_size, valid_corners

DPI = 110
KEPT, DROPPED = "#f4f1e8", "#2b3a55"
CMAP = matplotlib.colors.ListedColormap([DROPPED, KEPT])


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _feature_map(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth positive 'activation' map, so dropped blocks are easy to see."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    field = np.zeros((size, size))
    for _ in range(6):
        cy, cx, width = rng.random(3)
        field += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.02 + 0.05 * width))
    return 0.3 + field / field.max()


def _keep_mask(seeds: np.ndarray, spatial: tuple[int, ...], block: int | tuple[int, ...]) -> np.ndarray:
    clamped = clamp_block(spatial, normalize_block_size(block, len(spatial)))
    return ~oracle.paint_blocks(seeds, spatial, clamped)


def masks_by_block_size() -> bytes:
    """One 28x28 map, rate 0.15, blocks 1, 3, 5, 7: the mask, its seed corners, the valid region."""
    size, rate, blocks = 28, 0.15, (1, 3, 5, 7)
    rng = np.random.default_rng(2)
    x = _feature_map(size, rng)
    fig, axes = plt.subplots(2, len(blocks) + 1, figsize=(2.3 * (len(blocks) + 1), 5.3))
    axes[0, 0].imshow(x, cmap="magma", vmin=0)
    axes[0, 0].set_title("input feature map")
    axes[1, 0].axis("off")
    axes[1, 0].text(
        0.0,
        0.5,
        f"rate r = {rate}\n{size} x {size} map\n\ntop: the output\n(kept values scaled)\n\n"
        "bottom: dropped blocks,\nseed corners (dots),\nvalid corner region\n(dashed)",
        va="center",
        fontsize=9,
    )
    for col, k in enumerate(blocks, start=1):
        seeds = oracle.sample_seeds(rng, (1, 1, size, size), rate, k)
        out = oracle.apply_seeds(x[None, None], seeds, dtype="float32", block_size=k)[0, 0]
        keep = _keep_mask(seeds, (size, size), k)[0, 0]
        axes[0, col].imshow(out, cmap="magma", vmin=0)
        axes[0, col].set_title(f"block {k}: {1 - keep.mean():.0%} dropped")
        axes[1, col].imshow(keep, cmap=CMAP, vmin=0, vmax=1)
        v = valid_corners((size, size), (k, k))
        axes[1, col].add_patch(
            Rectangle((-0.5, -0.5), v[1], v[0], fill=False, ls="--", lw=1.0, ec="#d1495b", label="valid corners")
        )
        ys, xs = np.nonzero(seeds[0, 0])
        axes[1, col].plot(xs, ys, "o", ms=3, color="#d1495b")
        g = gamma(rate, (size, size), (k, k))
        axes[1, col].set_title(f"gamma = {g:.4f}, {len(xs)} seed{'' if len(xs) == 1 else 's'}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("DropBlock masks for several block sizes (one draw each, NumPy oracle)")
    fig.tight_layout()
    return _png(fig)


def per_channel_vs_shared() -> bytes:
    """Four channels of one sample: independent masks (default) against one shared mask."""
    shape, rate, k = (1, 4, 16, 16), 0.2, 3
    rng = np.random.default_rng(3)
    fig, axes = plt.subplots(2, shape[1], figsize=(2.0 * shape[1], 4.4))
    for row, per_channel in enumerate((True, False)):
        seeds = oracle.sample_seeds(rng, shape, rate, k, per_channel=per_channel)
        keep = _keep_mask(seeds, shape[2:], k)
        keep = np.broadcast_to(keep, (1, shape[1], *shape[2:]))
        for c in range(shape[1]):
            ax = axes[row, c]
            ax.imshow(keep[0, c], cmap=CMAP, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"channel {c}", fontsize=9)
        label = (
            "per_channel=True (default):\none mask per (sample, channel)"
            if per_channel
            else ("per_channel=False:\none mask per sample")
        )
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.suptitle(f"Per-channel against shared masks ({shape[2]}x{shape[3]} maps, rate {rate}, block {k})")
    fig.tight_layout()
    return _png(fig)


def _measured_fraction(rate: float, spatial: tuple[int, int], k: int, maps: int, rng: np.random.Generator) -> float:
    seeds = oracle.sample_seeds(rng, (maps, 1, *spatial), rate, k)
    return float(1.0 - _keep_mask(seeds, spatial, k).mean())


def drop_fraction_vs_rate() -> bytes:
    """Closed-form expected drop fraction against the rate, with measured oracle draws."""
    rng = np.random.default_rng(11)
    settings = (((56, 56), 7, "#2b3a55"), ((14, 14), 7, "#d1495b"), ((14, 14), 3, "#edae49"), ((7, 7), 7, "#00798c"))
    # r = 1 is special (gamma = 1: everything is dropped), so the curves stop just before it.
    rates = np.linspace(0.0, 0.99, 45)
    measured_rates = np.linspace(0.05, 0.95, 10)
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.3))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="nominal rate (y = r)")
    for spatial, k, color in settings:
        expected = [oracle.expected_drop_fraction(r, spatial, (k, k)) for r in rates]
        label = f"{spatial[0]}x{spatial[1]}, block {k}"
        ax.plot(rates, expected, color=color, label=f"{label}: expected")
        maps = max(64, 800_000 // (spatial[0] * spatial[1]))
        measured = [_measured_fraction(r, spatial, k, maps, rng) for r in measured_rates]
        ax.plot(measured_rates, measured, "o", color=color, ms=4, mfc="none")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.array(expected[1:]) / rates[1:]
        ax_ratio.plot(rates[1:], ratio, color=color, label=label)
    ax.plot([], [], "o", color="black", mfc="none", ms=4, label="measured (oracle draws)")
    ax.plot([1.0], [1.0], "*", color="black", ms=9, label="r = 1: gamma = 1, all dropped")
    ax.set_xlabel("rate r")
    ax.set_ylabel("fraction of the map dropped")
    ax.set_title("Expected (lines) and measured (circles) drop fraction")
    ax.legend(fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax_ratio.axhline(1.0, ls="--", color="grey", lw=1)
    ax_ratio.set_xlabel("rate r")
    ax_ratio.set_ylabel("expected drop fraction / r")
    ax_ratio.set_title("Blocks overlap: the paper's gamma under-shoots")
    ax_ratio.set_xlim(0, 1)
    ax_ratio.set_ylim(0.4, 1.05)
    ax_ratio.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def coverage_and_keep_probability() -> bytes:
    """n(pos) and the drop probability per position, 14x14 map, block 7, rate 0.1."""
    spatial, block, rate = (14, 14), (7, 7), 0.1
    counts = oracle.coverage_counts(spatial, block)
    drop = 1.0 - oracle.keep_probability(rate, spatial, block)
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.9))
    for ax, data, title, fmt in (
        (axes[0], counts, "n(pos): valid corners whose block covers pos", "{:d}"),
        (axes[1], drop, f"P(pos dropped) = 1 - (1 - gamma)^n(pos), r = {rate}", "{:.2f}"),
    ):
        image = ax.imshow(data, cmap="viridis")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if data is counts:
            for (i, j), value in np.ndenumerate(data):
                if (i + j) % 3 == 0:
                    ax.text(j, i, fmt.format(int(value)), ha="center", va="center", fontsize=6, color="white")
    mean = drop.mean()
    fig.suptitle(f"14x14 map, block 7: the centre is covered by 49 corners, a corner pixel by 1 (mean {mean:.3f})")
    fig.tight_layout()
    return _png(fig)


def block_over_map() -> bytes:
    """Blocks larger than the map: clamped, so each map is dropped whole (or in stripes)."""
    rng = np.random.default_rng(5)
    rows = (((4, 4), 7, 0.3), ((4, 9), 7, 0.3))
    channels = 12
    fig = plt.figure(figsize=(1.0 * channels, 3.6))
    for subfig, (spatial, k, rate) in zip(fig.subfigures(len(rows), 1), rows, strict=True):
        seeds = oracle.sample_seeds(rng, (1, channels, *spatial), rate, k)
        keep = _keep_mask(seeds, spatial, k)[0]
        clamped = clamp_block(spatial, (k, k))
        axes = subfig.subplots(1, channels)
        for c, ax in enumerate(axes):
            ax.imshow(keep[c], cmap=CMAP, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        dropped_whole = int(sum(not keep[c].any() for c in range(channels)))
        corners = "x".join(str(v) for v in valid_corners(spatial, clamped))
        subfig.suptitle(
            f"{spatial[0]}x{spatial[1]} maps, block {k} -> clamped to {clamped[0]}x{clamped[1]}, "
            f"gamma = {gamma(rate, spatial, clamped):.3f} over {corners} corners; "
            f"rate {rate}: {dropped_whole} of {channels} maps dropped whole",
            fontsize=10,
        )
    return _png(fig)


FIGURES: dict[str, Callable[[], bytes]] = {
    "masks.png": masks_by_block_size,
    "per_channel.png": per_channel_vs_shared,
    "drop_fraction.png": drop_fraction_vs_rate,
    "coverage.png": coverage_and_keep_probability,
    "block_over_map.png": block_over_map,
}


def all_figures() -> dict[str, bytes]:
    """Every picture, by file name."""
    return {name: draw() for name, draw in FIGURES.items()}
