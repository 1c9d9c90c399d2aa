"""Aggregate a study: one CSV row per job × step, and mean ± std r_t curves by word type (Ban et al. 2024, fig. 3)."""

from __future__ import annotations

import csv
import math
import struct
import zlib
from collections import defaultdict
from pathlib import Path

from ..attention.render import Series, rt_plot


def mean_over_words(payload: dict) -> list[float]:
    """r_t averaged over the negative words at each step; NaN where the negative was off."""
    curves = [[math.nan if v is None else v for v in curve] for curve in payload["r"]]
    return [sum(vs) / len(vs) for vs in zip(*curves, strict=True)]


def rows(records: list[dict], grid: list[str]) -> list[dict]:
    """One row per successful job and step."""
    out = []
    for record in records:
        if record["status"] != "success" or not record["rt"]:
            continue
        params = record["params"]
        for step, r in enumerate(mean_over_words(record["rt"][0])):
            out.append({"job": record["id"], "server": record["server"], **{k: params[k] for k in
                        ("positive", "negative", "type", "seed", *grid)}, "step": step, "r": r})
    return out


def group_curves(table: list[dict], grid: list[str]) -> dict[str, tuple[list[float], list[float], int]]:
    """Label → (mean, std, jobs) per step, grouped by word type and by every grid parameter that varies."""
    varying = [k for k in grid if len({row[k] for row in table}) > 1]
    series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in table:
        label = ", ".join([row["type"], *(f"{k}={row[k]}" for k in varying)])
        if not math.isnan(row["r"]):
            series[label][row["step"]].append(row["r"])
    out = {}
    for label, by_step in sorted(series.items()):
        steps = range(max(by_step) + 1)
        values = [by_step.get(t, []) for t in steps]
        mean = [sum(v) / len(v) if v else math.nan for v in values]
        std = [math.sqrt(sum((x - m) ** 2 for x in v) / len(v)) if v else math.nan for v, m in zip(values, mean,
                                                                                                    strict=True)]
        out[label] = (mean, std, max(len(v) for v in values))
    return out


def png(image, path: Path) -> None:
    """An (H, W, 3) tensor in [0, 1] as an 8-bit PNG, with zlib alone."""
    pixels = (image.clamp(0, 1) * 255).round().byte().numpy()
    height, width = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def write_report(records: list[dict], grid: list[str], out: Path) -> dict[str, Path]:
    """results.csv (job × step), groups.csv (label × step: mean, std, n) and rt_by_group.png."""
    table = rows(records, grid)
    paths = {name: out / name for name in ("results.csv", "groups.csv", "rt_by_group.png")}
    with paths["results.csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["job", "server", "positive", "negative", "type", "seed", *grid,
                                               "step", "r"])
        writer.writeheader()
        writer.writerows(table)
    groups = group_curves(table, grid)
    with paths["groups.csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "step", "mean", "std", "jobs"])
        for label, (mean, std, n) in groups.items():
            writer.writerows([label, t, m, s, n] for t, (m, s) in enumerate(zip(mean, std, strict=True)))
    if groups:
        plot_groups(groups, paths["rt_by_group.png"])
    return paths


def plot_groups(groups: dict[str, tuple[list[float], list[float], int]], path: Path) -> None:
    """Each group's mean curve, labelled with its job count, between dashed mean ± std lines, one colour per
    group, as a PNG."""
    series = []
    for k, (label, (mean, std, jobs)) in enumerate(groups.items()):
        series += [Series(f"{label} (n={jobs})", mean, k),
                   *(Series("", [m + sign * s for m, s in zip(mean, std, strict=True)], k, 1.0, dashed=True)
                     for sign in (1, -1))]
    png(rt_plot(series, title="mean r_t ± std per step"), path)
