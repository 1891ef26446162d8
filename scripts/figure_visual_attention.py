"""Visual attention figure (issue 9): where a video-conditioned Neuroformer trained on the Allen
gratings with rendered grating video looks in the frames, per orientation.

Steps (each skipped when its output is given):
1. render the grating frames for ``../shared/data/allen_vcn_gratings`` (``neuroformer
   render-gratings``, 32 x 32 px, the ASSUMED nominal spatial / temporal frequency);
2. train ``configs/allen_video.yaml`` with ``num_modality_layers`` 2 (so that the rollout through
   the stage layers is not the raw map itself) and ``--max-steps`` steps, one thread;
3. the attention maps (:mod:`hf_neuroformer.analysis.visual_attention`) of the population and of
   the three units with the most test spikes on the non-overlapping test windows. Every trial
   starts its grating at phase 0, so the windows at the same offset into trials of the same
   orientation show identical frames: the maps are pooled over the test trials of each
   orientation at one offset (``--offset``, in windows) and drawn over those frames.

Writes ``benchmarks/figures/allen_visual_attention.png``, ``benchmarks/visual_attention.json``
and the ``visual-attention`` section of BENCHMARKS.md (with ``--note``, the description of the
figure). Usage::

    python scripts/figure_visual_attention.py --work-dir /tmp/va [--model DIR --data NWB] [--max-steps 2000]
    python scripts/figure_visual_attention.py --report-only --note "what the figure shows"
    python scripts/figure_visual_attention.py --work-dir /tmp/va_try --max-steps 20 --out-dir /tmp/va_try  # trial run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from hf_neuroformer.jsonio import json_safe

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- visual-attention:start -->", "<!-- visual-attention:end -->"
FIGURE = REPO / "benchmarks" / "figures" / "allen_visual_attention.png"
ONSET = REPO / "benchmarks" / "figures" / "allen_visual_attention_onset.png"
JSON = REPO / "benchmarks" / "visual_attention.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work-dir", default="/tmp/visual_attention", help="rendered NWB and trained model go here")
    p.add_argument("--data", help="rendered recording (skip step 1)")
    p.add_argument("--model", help="trained video model directory (skip step 2)")
    p.add_argument("--max-steps", type=int, default=2000, help="training steps (default: %(default)s)")
    p.add_argument("--offset", type=int, default=5, help="window offset into each trial, in current windows "
                                                         "(default: %(default)s: 50-60 ms after onset with the 10-ms "
                                                         "windows of configs/allen_video.yaml)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--note", help="what the figure shows (a paragraph in BENCHMARKS.md; kept in the JSON)")
    p.add_argument("--report-only", action="store_true", help="rebuild the BENCHMARKS.md section from the JSON")
    p.add_argument("--out-dir", help="write the figures and the JSON here instead of benchmarks/, and leave "
                                     "BENCHMARKS.md alone (a trial run)")
    args = p.parse_args(argv)
    if args.offset < 0:
        p.error(f"--offset: expected a window offset into each trial >= 0, got {args.offset}")
    return args


def check_offset(offset: int, trials: np.ndarray, current_window: float) -> None:
    """Refuse an ``--offset`` (in current windows) that no trial holds a whole window at: the shortest
    of ``trials`` (``(n, 2)`` s) holds ``floor(length / current_window)`` windows. ``--offset 10`` of
    100-ms trials and 10-ms windows failed inside the analysis, after the training, with numpy's
    "index 0 is out of bounds for axis 0 with size 0".

    Raises:
        SystemExit: naming ``--offset`` and the offsets the trials hold.
    """
    n = int(np.floor(np.min(np.diff(trials, axis=1)) / current_window + 1e-9))
    if offset >= n:
        raise SystemExit(f"--offset: {offset} windows of {current_window * 1000:g} ms into each trial, but the shortest "
                         f"trial holds {n} windows: expected an offset in 0..{n - 1}")


def check_patch(video: dict, where: str) -> None:
    """Refuse a video modality whose patches span more than one frame (``patch_size[0] > 1``): the
    analysis compares attention and luminance frame by frame (per-frame masks of real and grey
    frames index the patch grid), which raised numpy's IndexError after the maps were computed.
    ``neuroformer attention-map`` handles any patch size.

    Raises:
        SystemExit: naming ``where`` (the model or config), the modality and its ``patch_size``.
    """
    patch = list(video["patch_size"])
    if patch[0] != 1:
        raise SystemExit(f"{where}: the video modality {video['name']!r} has patch_size {patch}, patches spanning "
                         f"{patch[0]} frames; this script compares attention and luminance frame by frame and needs "
                         "patch_size[0] == 1 (neuroformer attention-map takes any patch size)")


def current_window_ms(stats: dict) -> float:
    """The current window of the analysed model, ms: ``stats["current_window_s"]`` (written by
    :func:`analyse`), or, for a JSON written before that key, the ``current_window`` of
    ``configs/allen_video.yaml``, the config the script trained such a model with."""
    if "current_window_s" in stats:
        return 1000.0 * float(stats["current_window_s"])
    import yaml

    return 1000.0 * float(yaml.safe_load((REPO / "configs" / "allen_video.yaml").read_text())["current_window"])


def offset_span_ms(stats: dict) -> str:
    """``"50-60"``: the span after trial onset, ms, of the windows at ``stats["offset_windows"]``."""
    cw = current_window_ms(stats)
    return f"{stats['offset_windows'] * cw:g}-{(stats['offset_windows'] + 1) * cw:g}"


def _patch_means(a: np.ndarray, patch) -> np.ndarray:
    """``(F, H, W) -> (F // pt, H // ph, W // pw)`` patch sums."""
    pt, ph, pw = patch
    F, H, W = a.shape
    return a.reshape(F // pt, pt, H // ph, ph, W // pw, pw).sum((1, 3, 5))


def _corr(x, y) -> float:
    """Pearson r of two equal-size arrays (flattened), as the fidelity metrics and the package's
    patch_luminance_correlation compute it (``metrics.fidelity._pearson``): NaN under 3 values (over
    2 an r is +1 or -1 whatever they are) or for an array constant within ``CONSTANT_RTOL`` (an
    exact ``std() > 0`` let an array even but for rounding through, an r of rounding noise)."""
    from hf_neuroformer.metrics.fidelity import _pearson

    return _pearson(np.ravel(x), np.ravel(y))


def analyse(model_dir, data_path, offset: int):
    from hf_neuroformer.analysis.visual_attention import pool_windows, visual_attention_maps
    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import tiling_windows

    model, tok, plan = load_pretrained(model_dir)
    cfg = model.config
    video = next(m for m in cfg.modalities if m["kind"] == "video")
    check_patch(video, f"--model {model_dir}")  # before the recording is read and the maps computed
    rec = load_recording(data_path)
    check_offset(offset, rec.trials, cfg.current_window)
    starts, clips = tiling_windows(plan, "test", cfg, use="read for the attention maps")  # the scored test windows
    trial = np.searchsorted(rec.trials[:, 0], starts + 1e-9) - 1
    k = np.rint((starts - rec.trials[trial, 0]) / cfg.current_window).astype(int)
    ori = np.asarray(rec.trial_info["orientation_deg"])[trial]
    t_in = np.zeros(rec.n_units, dtype=np.int64)
    for s in starts:
        lo, hi = np.searchsorted(rec.spike_times, [s, s + cfg.current_window])
        t_in += np.bincount(rec.unit_ids[lo:hi], minlength=rec.n_units)
    top_units = [int(u) for u in np.argsort(t_in, kind="stable")[::-1][:3]]
    sels = {"population": None, **{f"unit {u}": [u] for u in top_units}}
    res = {name: visual_attention_maps(model, tok, rec, starts, past_clip_starts=clips, units=u)
           for name, u in sels.items()}
    pop = res["population"]
    patch = tuple(video["patch_size"])
    fm = pop["frame_mask"]
    grating = fm & (np.abs(pop["frames"]).max((2, 3)) > 0)  # real frames that show a grating (not the grey gap)
    oris = sorted(np.unique(ori).tolist())
    per = {}
    for o in oris:
        at = (ori == o) & (k == offset)
        frames = pop["frames"][at][0]
        assert np.allclose(pop["frames"][at], frames[None], atol=1e-5), "same offset, same orientation: same frames"
        entry = {"n_trials": int(at.sum()), "frame_mask": fm[at][0].tolist(),
                 "frame_times_ms": (1000 * pop["frame_times"][at][0]).round(1).tolist()}
        for name, r in res.items():
            for ro in ("raw", "rollout"):
                m = pool_windows(r[f"maps_{ro}"][at], r["n_queries"][at]) if r["n_queries"][at].sum() else None
                entry.setdefault("maps", {})[f"{name}/{ro}"] = m
            entry.setdefault("n_queries", {})[name] = int(r["n_queries"][at].sum())
        entry["frames"] = frames
        per[o] = entry
    # numbers: does the population's raw map follow the stripes?
    stats = {"offset_windows": offset, "current_window_s": float(cfg.current_window), "orientations": oris, "top_units": top_units,
             "n_test_windows": int(starts.size), "n_test_trials": int(np.unique(trial).size)}
    own, others, along, across, edge, centre, last_share = {}, {}, {}, {}, {}, {}, {}
    for o in oris:
        e = per[o]
        m = e["maps"]["population/raw"]
        f = e["frames"]
        real = np.asarray(e["frame_mask"])
        mp, lp = _patch_means(m, patch)[real], _patch_means(f, patch)[real] / np.prod(patch)
        own[o] = _corr(mp, lp)
        others[o] = {o2: _corr(mp, _patch_means(per[o2]["frames"], patch)[real] / np.prod(patch))
                     for o2 in oris if o2 != o}
        last = _patch_means(m, patch)[-1]  # latest frame, (gh, gw)
        last = last / last.sum()
        g = last.shape
        rel = last * last.size  # x uniform over the frame's patches
        along[o] = float(rel.std(0).mean())  # spread down each column
        across[o] = float(rel.std(1).mean())  # spread along each row
        border = np.ones(g, bool)
        border[1:-1, 1:-1] = False
        edge[o], centre[o] = float(rel[border].mean()), float(rel[~border].mean())
        last_share[o] = float(_patch_means(m, patch)[-1].sum())
    full = grating.sum(1) == fm.sum(1)
    # do single units look elsewhere than the population? (patch-level correlation with its map)
    uvp = {}
    for name in sels:
        if name == "population":
            continue
        uvp[name] = {}
        for o in oris:
            e = per[o]
            real = np.asarray(e["frame_mask"])
            um = e["maps"][f"{name}/raw"]
            uvp[name][o] = (None if um is None else
                            _corr(_patch_means(um, patch)[real], _patch_means(e["maps"]["population/raw"], patch)[real]))
    stats["unit_vs_population_map_corr"] = uvp
    # control: the same architecture and config (pixel statistics included), randomly initialised
    # (seed 0), on the same windows: how much of the luminance correlation the input alone gives
    import torch

    torch.manual_seed(0)
    untrained = type(model)(cfg).eval()
    ctl = visual_attention_maps(untrained, tok, rec, starts, past_clip_starts=clips)
    ctl_own, ctl_pw = {}, {}
    for o in oris:
        at = (ori == o) & (k == offset)
        m = pool_windows(ctl["maps_raw"][at], ctl["n_queries"][at])
        real = np.asarray(per[o]["frame_mask"])
        ctl_own[o] = _corr(_patch_means(m, patch)[real], _patch_means(per[o]["frames"], patch)[real])
        vals = [_corr(_patch_means(ctl["maps_raw"][i], patch)[fm[i]], _patch_means(ctl["frames"][i], patch)[fm[i]])
                for i in np.flatnonzero((ori == o) & full & (ctl["n_queries"] > 0))]
        ctl_pw[o] = float(np.nanmean(vals))
        rel = _patch_means(m, patch)[-1]
        ctl_own.setdefault("range_x_uniform", {})[o] = [float(rel.min() / rel.mean()), float(rel.max() / rel.mean())]
    stats["untrained_control"] = {"patch_luminance_corr_own_frames": {o: ctl_own[o] for o in oris},
                                  "per_window_patch_luminance_corr": ctl_pw,
                                  "latest_frame_min_max_x_uniform": ctl_own["range_x_uniform"]}
    trained_rng = {}
    for o in oris:
        rel = _patch_means(per[o]["maps"]["population/raw"], patch)[-1]
        trained_rng[o] = [float(rel.min() / rel.mean()), float(rel.max() / rel.mean())]
    stats["latest_frame_min_max_x_uniform"] = trained_rng
    stats.update(
        patch_luminance_corr_own_frames=own, patch_luminance_corr_other_orientations=others,
        latest_frame_std_down_columns=along, latest_frame_std_along_rows=across,
        latest_frame_border_x_uniform=edge, latest_frame_centre_x_uniform=centre, latest_frame_share=last_share,
    )
    # per window: luminance correlation (population, raw), by orientation, over windows whose frames all show a grating
    pwc = {}
    for o in oris:
        vals = []
        for i in np.flatnonzero((ori == o) & full & (pop["n_queries"] > 0)):
            mp = _patch_means(pop["maps_raw"][i], patch)[fm[i]]
            lp = _patch_means(pop["frames"][i], patch)[fm[i]]
            vals.append(_corr(mp, lp))
        pwc[o] = {"mean": float(np.nanmean(vals)), "n_windows": len(vals)}
    stats["per_window_patch_luminance_corr"] = pwc
    # the grey frames before each trial (first window of a trial: a grating frame after grey ones)
    gm = []
    first = np.flatnonzero((k == 0) & (pop["n_queries"] > 0))
    for i in first:
        grey = fm[i] & ~grating[i]
        if grey.any() and grating[i].any():
            pm = _patch_means(pop["maps_raw"][i], patch)
            gm.append({"grey_share": float(pm[grey].sum()), "grating_share": float(pm[grating[i]].sum()),
                       "n_grey": int(grey.sum()), "n_grating": int(grating[i].sum()),
                       "grey_cv": float(pm[grey].std() / pm[grey].mean())})
    stats["trial_onset_windows"] = {
        "n": len(gm),
        "grey_share_per_frame": float(np.mean([g["grey_share"] / g["n_grey"] for g in gm])) if gm else None,
        "grating_share_per_frame": float(np.mean([g["grating_share"] / g["n_grating"] for g in gm])) if gm else None,
        "grey_frame_patch_cv": float(np.mean([g["grey_cv"] for g in gm])) if gm else None,
    }
    stats["video_share_raw"] = float(np.nansum(pop["video_share_raw"] * pop["n_queries"]) / pop["n_queries"].sum())
    stats["video_share_rollout"] = float(np.nansum(pop["video_share_rollout"] * pop["n_queries"])
                                         / pop["n_queries"].sum())
    stats["n_stage_layers"] = int(pop["n_stage_layers"])
    stats["grid"] = list(pop["grid"])
    stats["patch_size"] = list(patch)
    return per, stats, sels


def figure(per, stats, sels, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hf_neuroformer.analysis.visual_attention import draw_overlay
    from hf_neuroformer.plotting import save_figure

    oris = stats["orientations"]
    n_frames = len(per[oris[0]]["frame_mask"])
    cols = [("population/raw", f) for f in range(n_frames)] + [("population/rollout", n_frames - 1)]
    cols += [(f"{name}/raw", n_frames - 1) for name in sels if name != "population"]
    fig = Figure(figsize=(1.75 * len(cols) + 0.9, 1.75 * len(oris) + 1.35))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(oris), len(cols), squeeze=False)
    top = 1 - 1.1 / fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.88, bottom=0.02, top=top, wspace=0.04, hspace=0.06)
    vals = []
    for o in oris:
        e = per[o]
        n_px = int(np.sum(e["frame_mask"])) * e["frames"].shape[1] * e["frames"].shape[2]
        for key, f in cols:
            if e["maps"][key] is not None and e["frame_mask"][f]:
                vals.append(e["maps"][key][f] * n_px)
    vals = np.concatenate([v.ravel() for v in vals])
    vmin, vmax = np.percentile(vals, [0.5, 99.5])
    im = None
    for r, o in enumerate(oris):
        e = per[o]
        n_px = int(np.sum(e["frame_mask"])) * e["frames"].shape[1] * e["frames"].shape[2]
        for c, (key, f) in enumerate(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                name, ro = key.split("/")
                ax.set_title(f"{name}, {ro}\nframe {f} ({e['frame_times_ms'][f]:+.0f} ms)", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{o} deg\n({e['n_trials']} trials)", fontsize=8)
            if not e["frame_mask"][f] or e["maps"][key] is None:
                ax.text(0.5, 0.5, "no frame" if not e["frame_mask"][f] else "no spikes", ha="center", va="center",
                        transform=ax.transAxes, fontsize=7)
                continue
            im = draw_overlay(ax, e["frames"][f], e["maps"][key][f] * n_px, vmin, vmax)
            ax.text(0.03, 0.03, f"n={e['n_queries'][key.split('/')[0]]}", color="w", fontsize=6,
                    transform=ax.transAxes)
    cb = fig.colorbar(im, cax=fig.add_axes([0.9, 0.1, 0.015, top - 0.15]))
    cb.set_label("attention (x uniform over the window's real pixels)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    fig.suptitle(
        f"Allen gratings, rendered video ({stats['grid'][1] * stats['patch_size'][1]}x"
        f"{stats['grid'][2] * stats['patch_size'][2]} px, patches {stats['patch_size'][1]}x{stats['patch_size'][2]}): "
        f"modality-stage attention of spike tokens over the frames, {offset_span_ms(stats)} ms after trial onset, pooled over "
        f"the test trials of each orientation (identical frames).\nQuery = position whose INPUT token is the unit's "
        f"spike; raw = last of {stats['n_stage_layers']} stage layers, mean over heads; rollout = "
        f"r_l = 0.5 r_(l-1) + 0.5 A_l through the stage layers; each map sums to 1 over all real pixels of the window; "
        f"n = spike tokens pooled. White lines: the frame's stripe edges, bright stripes dotted.", fontsize=7, x=0.02, ha="left", wrap=True)
    save_figure(fig, path, dpi=80)


def render(out) -> str:
    s = out["stats"]
    oris = s["orientations"]

    def get(d, o):
        return d[str(o)] if str(o) in d else d[o]

    rows = ["| orientation | corr(map, own frames' patch luminance) | same map vs the other orientations' frames | "
            "per-window corr (test windows) | latest frame: spread down columns / along rows (x uniform, s.d.) | "
            "latest frame: border / centre patches (x uniform) |", "|---|---:|---|---:|---|---|"]
    for o in oris:
        oth = get(s["patch_luminance_corr_other_orientations"], o)
        rows.append(
            f"| {o} deg | {get(s['patch_luminance_corr_own_frames'], o):+.2f} | "
            + ", ".join(f"{k} deg {v:+.2f}" for k, v in oth.items())
            + f" | {get(s['per_window_patch_luminance_corr'], o)['mean']:+.2f} "
              f"({get(s['per_window_patch_luminance_corr'], o)['n_windows']}) | "
              f"{get(s['latest_frame_std_down_columns'], o):.3f} / {get(s['latest_frame_std_along_rows'], o):.3f} | "
              f"{get(s['latest_frame_border_x_uniform'], o):.3f} / {get(s['latest_frame_centre_x_uniform'], o):.3f} |")
    on = s["trial_onset_windows"]
    lines = [
        START,
        "## Visual attention over the rendered grating video (Allen, issue 9)",
        "",
        f"`{out['command']}` ({out['date']}, cpu, one thread"
        + (f"; training {out['timings']['train_s']:.0f} s). " if "train_s" in out["timings"] else
           "; the model and the rendered NWB were made beforehand by the same `neuroformer render-gratings` and "
           "`neuroformer train` calls as the script's steps 1 and 2). ")
        + 
        f"Model: `configs/allen_video.yaml` with `num_modality_layers: 2` (so the rollout differs from the raw map) "
        f"trained {out['total_steps']} steps (12 epochs, the config's `max_epochs` default; checkpoint of step "
        f"{out['best_step']}, lowest validation loss; test unit-id NLL {out['test_id_nll']:.3f} nats/spike). Raw numbers: "
        "`benchmarks/visual_attention.json`; how the maps are built and normalised: "
        "`hf_neuroformer/analysis/visual_attention.py`; the same maps for any model: "
        "`neuroformer attention-map --model DIR --data NWB [--units 3,17] [--window-index K] --output PNG`.",
        "",
        "![visual attention](benchmarks/figures/allen_visual_attention.png)",
        "",
        "The first test window (a trial onset, through `neuroformer attention-map --window-index 0`): "
        "![onset window](benchmarks/figures/allen_visual_attention_onset.png)",
        "",
        f"Test split: {s['n_test_trials']} trials, {s['n_test_windows']} windows of {current_window_ms(s):g} ms; the "
        f"figure pools the windows {offset_span_ms(s)} ms after onset (identical frames per "
        f"orientation). Units shown: the three with the most test spikes ({s['top_units']}). Share of each spike "
        f"token's stage attention that goes to the video at all (rest: the null token): "
        f"{s['video_share_raw']:.3f} raw, {s['video_share_rollout']:.3f} of the rollout (which keeps 0.25 on the "
        "token itself with two layers). Patch grid per frame: "
        f"{s['grid'][1]} x {s['grid'][2]} patches of {s['patch_size'][1]} x {s['patch_size'][2]} px.",
        "",
        "Population, raw map, patch level (correlations over the real patches of the window's frames; positive = "
        "more attention on brighter patches):",
        "",
        *rows,
        "",
        "Control, the same architecture and config randomly initialised (seed 0), same windows: corr(map, own "
        "frames' patch luminance) " + " / ".join(f"{get(s['untrained_control']['patch_luminance_corr_own_frames'], o):+.2f}"
                                                 for o in oris)
        + f" ({oris} deg; per window " + " / ".join(
            f"{get(s['untrained_control']['per_window_patch_luminance_corr'], o):+.2f}" for o in oris)
        + "); latest frame's patches span " + ", ".join(
            "{:.2f}-{:.2f}".format(*get(s["untrained_control"]["latest_frame_min_max_x_uniform"], o)) for o in oris)
        + " x their mean, against " + ", ".join(
            "{:.2f}-{:.2f}".format(*get(s["latest_frame_min_max_x_uniform"], o)) for o in oris) + " trained.",
        "",
        "Single units against the population (correlation of their raw patch maps, per orientation "
        f"{oris} deg): " + "; ".join(f"{n} " + " / ".join("n/a" if get(v, o) is None else f"{get(v, o):+.2f}"
                                                            for o in oris)
                                     for n, v in s["unit_vs_population_map_corr"].items()) + ".",
        "",
        f"Trial-onset windows (a grating frame after grey pre-trial frames, {on['n']} windows): attention per grey "
        f"frame {on['grey_share_per_frame']:.3f} vs per grating frame {on['grating_share_per_frame']:.3f} of the "
        f"window's total; coefficient of variation over a grey frame's patches {on['grey_frame_patch_cv']:.3f} "
        "(a blank frame has nothing but the positional encoding to tell its patches apart).",
        "",
        *([out["note"], ""] if out.get("note") else []),
        END,
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    sys.path.insert(0, str(REPO / "scripts"))
    from benchmarks_md import replace_section, write_atomic

    global FIGURE, ONSET, JSON
    args = parse_args(argv)
    if args.report_only:
        out = json.loads(JSON.read_text())
        if args.note:
            out["note"] = args.note
            write_atomic(JSON, json.dumps(out, indent=1))
        replace_section(REPO / "BENCHMARKS.md", START, END, render(out))
        print(f"[figure] rebuilt the BENCHMARKS.md section from {JSON}")
        return 0
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import torch

    from hf_neuroformer.cli import main as cli

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    data = Path(args.data) if args.data else work / "allen_gratings_video.nwb"
    if not args.data:
        t0 = time.time()
        assert cli(["render-gratings", "--data", str(REPO.parent / "shared" / "data" / "allen_vcn_gratings"),
                    "--output", str(data), "--overwrite"]) == 0
        timings["render_s"] = time.time() - t0
    model = Path(args.model) if args.model else work / "allen_video_model"
    if not args.model:
        import yaml

        from hf_neuroformer.io import load_recording

        text = (REPO / "configs" / "allen_video.yaml").read_text()
        # before the training, not after it
        yml = yaml.safe_load(text)
        check_offset(args.offset, load_recording(data).trials, float(yml["current_window"]))
        check_patch(next(m for m in yml["modalities"] if m["kind"] == "video"), "configs/allen_video.yaml")
        assert "num_modality_layers: 1" in text
        cfg = work / "allen_video_2stage.yaml"
        cfg.write_text(text.replace("num_modality_layers: 1", "num_modality_layers: 2"))
        t0 = time.time()
        assert cli(["train", "--config", str(cfg), "--data", str(data), "--output-dir", str(model),
                    "--max-steps", str(args.max_steps), "--overwrite"]) == 0
        timings["train_s"] = time.time() - t0
    t0 = time.time()
    per, stats, sels = analyse(model, data, args.offset)
    timings["analysis_s"] = time.time() - t0
    if args.out_dir:
        od = Path(args.out_dir)
        FIGURE, ONSET, JSON = od / FIGURE.name, od / ONSET.name, od / JSON.name
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    figure(per, stats, sels, FIGURE)
    # the first test window (a trial onset: grey pre-trial frames, then the first grating frame),
    # through the command itself
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        assert cli(["attention-map", "--model", str(model), "--data", str(data), "--window-index", "0",
                    "--output", f"{tmp}/onset.png"]) == 0
        shutil.copyfile(f"{tmp}/onset.png", ONSET)
    metrics = json.loads((model / "metrics.json").read_text()) if (model / "metrics.json").exists() else {}
    cmd = "python scripts/figure_visual_attention.py " + " ".join(a for a in (argv or sys.argv[1:])
                                                                  if not a.startswith("--note"))
    out = {
        "command": cmd.strip(),
        "date": time.strftime("%Y-%m-%d"),
        "total_steps": metrics.get("total_steps"),
        "best_step": metrics.get("best_step"),
        "test_id_nll": metrics.get("test/id_nll", float("nan")),
        "timings": timings,
        "stats": stats,
        "per_orientation": {o: {k: v for k, v in e.items() if k not in ("maps", "frames")} for o, e in per.items()},
        "note": args.note or (json.loads(JSON.read_text()).get("note") if JSON.exists() else None),
    }
    write_atomic(JSON, json.dumps(json_safe(out), indent=1))
    if not args.out_dir:
        replace_section(REPO / "BENCHMARKS.md", START, END, render(json.loads(JSON.read_text())))
    print(json.dumps(json_safe(stats), indent=1))
    print(f"[figure] wrote {FIGURE} ({FIGURE.stat().st_size / 1024:.0f} KB), {ONSET}, {JSON}"
          + ("" if args.out_dir else ", BENCHMARKS.md section"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
