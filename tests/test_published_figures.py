"""Every published figure against the record it comes from.

The model card ``model_cards/neuroformer-a2929-wake.md``, the script-written sections of
BENCHMARKS.md, the hand-written paragraphs that quote them and the figures of README.md and docs/ are checked
against the JSON of their run in ``benchmarks/`` (rounded as printed), and the card's data
figures and licence against the recording and ``../shared/data/README.md``. A rerun that changes a
JSON without the text (or the text without the JSON) fails here. Files only: no training, no
network.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from conftest import documentation_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
CARD = ROOT / "model_cards" / "neuroformer-a2929-wake.md"


def _json(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / name).read_text())


def _section(tag: str) -> str:
    """The shipped BENCHMARKS.md section ``tag``, markers included."""
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert text.count(start) == 1 and text.count(end) == 1, tag
    return start + text.split(start)[1].split(end)[0] + end


def _between(text: str, first: str, last: str) -> str:
    """The text from the heading ``first`` to ``last`` (exclusive)."""
    assert text.count(first) == 1, first
    return text.split(first)[1].split(last)[0]


def _table(text: str, column: int = 1) -> dict:
    """``{first cell: cell column}`` (the value by default) of the Markdown tables' body rows in
    ``text`` (two columns, or three with the card's "better" column)."""
    rows, lines = {}, text.splitlines()
    for line, after in zip(lines, lines[1:] + [""]):
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) in (2, 3) and not after.startswith("|---") and column < len(cells):
            rows[cells[0]] = cells[column]
    return rows


def _missing(text: str, phrases) -> list:
    """The ``phrases`` not in ``text``, line breaks and runs of spaces read as one space."""
    flat = " ".join(text.split())
    return [p for p in phrases if " ".join(p.split()) not in flat]


def test_the_a2929_card_quotes_its_recorded_run():
    """Every figure of the card's tables and of its account of the run is the JSON of that run
    (``benchmarks/a2929_wake.json``, written by ``scripts/record_a2929.py``), rounded as printed,
    and the BENCHMARKS.md section of the same run is what ``record_a2929.section`` makes of it."""
    import record_a2929

    rec = _json("a2929_wake.json")
    assert rec["card"] == str(CARD.relative_to(ROOT))
    t, e = rec["train"], rec["evaluate_test"]
    card = CARD.read_text()
    assert _section("a2929-card") == record_a2929.section(rec, "benchmarks/a2929_wake.json")

    x, u, k = t["test/id_nll"], t["test/unigram_id_nll"], t["test/markov_id_nll"]
    expected = {
        "`test/id_nll` (Neuroformer)": f"**{x:.4f}** ({100 * (1 - x / u):.1f} % below unigram, "
                                       f"{100 * (1 - x / k):.1f} % below Markov)",
        "`test/markov_id_nll` (previous spike's unit)": f"{k:.4f}",
        "`test/unigram_id_nll` (unit frequencies)": f"{u:.4f}",
        "`test/dt_nll` (Neuroformer)": f"**{t['test/dt_nll']:.4f}**",
        "`test/markov_dt_nll` (previous spike's dt bin in the window)": f"{t['test/markov_dt_nll']:.4f} (see below)",
        "`test/marginal_dt_nll` (dt-bin frequencies)": f"{t['test/marginal_dt_nll']:.4f}",
        "held-out bits per spike vs Poisson units at their train-split rates (5 ms bins)":
            f"**{e['bits_per_spike']:.3f}**",
        "held-out bits per spike vs Poisson units at their rates in the test windows (nlb_tools' null)":
            f"{e['bits_per_spike_scored_rates_null']:.3f}",
        "`test/id_f1` (generated vs recorded, per window)": f"{t['test/id_f1']:.4f}",
        "`test/rate_corr` (over units)": f"{t['test/rate_corr']:.4f}",
        "truncated spikes": f"{t['n_truncated_spikes_by_split']['test']:,} of {t['n_spikes_by_split']['test']:,} "
                            f"test spikes ({t['n_truncated_past_spikes']:,} past-window spikes)",
        "rate ratio, median (generated / recorded)": f"{e['rate_ratio_median']:.3f}",
        "binned-count correlation, mean over units (100 ms bins)": f"{e['binned_count_corr_mean']:.3f}",
        "Fano factor correlation": f"{e['fano_corr']:.3f}",
        "pairwise count-correlation structure": f"{e['pairwise_corr_r']:.3f}",
        "ISI KS statistic, mean over units": f"{e['isi_ks_mean']:.3f}",
        "ISI KS floor (recorded spikes vs the same spikes moved to 5-ms dt-bin centres)":
            f"{e['isi_ks_floor_mean']:.3f}",
    }
    assert _table(card) == expected

    # the training budget: epochs of ceil(train windows / batch 32) steps (the default batch)
    per_epoch = math.ceil(t["n_train_windows"] / 32)
    assert t["total_steps"] % per_epoch == 0
    machine = rec["machine"].replace("+cpu", " CPU").split(", ", 1)
    n_test = t["n_test_windows"]
    assert _missing(card, [
        f"{t['total_steps']:,} steps ({t['total_steps'] // per_epoch} epochs) in {t['train_time_s']:.0f} s of "
        f"training time ({t['total_time_s']:.0f} s for the whole call",
        f"checkpoint of step {t['best_step']:,}, the {t['checkpoint_selection']}",
        f"on {rec['date']} at commit {rec['commit']}",
        f"on {machine[0]}\n({machine[1]})",
        f"{t['num_parameters'] / 1e6:.2f} M parameters ({t['num_parameters']:,})",
        f"{t['n_train_windows']:,} / {t['n_validation_windows']:,} / {n_test:,} windows",
        f"({n_test:,} test windows, {n_test * 0.1:.1f} s)",  # current window 0.1 s
        f"{t['test/markov_dt_nll'] - t['test/dt_nll']:.2f} nats per spike below the Markov dt baseline",
        f"would look like {t['test/marginal_dt_nll'] - t['test/dt_nll']:.2f}",
        f"today's {t['test/id_f1']:.4f}, {e['pairwise_corr_r']:.3f}\nand {e['isi_ks_mean']:.3f}",
    ]) == []


def test_the_a2929_card_says_which_way_each_figure_is_better():
    """Break test: the hand-written card's tables gave NLLs (lower is better) beside F1s and
    correlations (higher) with no direction, where the cards ``neuroformer push`` writes have a
    "better" column. Every row now has one, and a row of a metric the package's cards list says
    what ``hub.metric_direction`` says."""
    from hf_neuroformer.hub import metric_direction

    card = CARD.read_text()
    values, better = _table(card), _table(card, 2)
    assert values and set(better) == set(values) and all(better.values()), set(values) ^ set(better)
    for row, direction in better.items():
        key = re.match(r"`test/([a-z_0-9]+)`", row)
        name = (key.group(1) if key else "bits_per_spike" if "bits per spike" in row
                else "binned_count_corr_mean" if row.startswith("binned-count correlation") else None)
        if name:
            assert direction == metric_direction(name, False), row


def test_the_a2929_card_says_no_earlier_run_differed_with_this_run_s_own_figures():
    """Where the card says an earlier run's figures differed, the figures it lists for that run are
    not this run's (the card said 8e5443b's generated-spike figures "differed in the third decimal
    (id_f1 0.5628, pairwise structure 0.726, ISI KS 0.200)", written when the card quoted e9f8f91's
    0.5625 / 0.725 / 0.199, and left when the card moved to 86c633e's run, whose figures they are)."""
    rec = _json("a2929_wake.json")
    own = {f"{v:.4f}" for v in rec["train"].values() if isinstance(v, float)}
    own |= {f"{v:.3f}" for v in rec["evaluate_test"].values()}
    text = " ".join(CARD.read_text().split())
    for clause in re.split(r"(?<=[.;])\s", text):
        if "differ" in clause:
            quoted = set(re.findall(r"\b\d+\.\d{3,4}\b", clause))
            assert not quoted or not quoted <= own, clause


def test_the_a2929_card_describes_its_recording_and_licence_as_the_data_do(shared_data):
    """The card's metadata block loads with huggingface_hub's ``ModelCard`` into the fields a
    pushed card has (``hub.MODEL_CARD_LIBRARY_NAME`` and ``MODEL_CARD_TAGS`` are checked in
    test_hub), its licence is the one ``../shared/data/README.md`` gives the recording, and its
    unit and spike counts are the recording's (wake epoch 600-1200 s, read from the NWB file)."""
    import h5py
    from huggingface_hub import ModelCard, ModelCardData

    card = ModelCard.load(CARD)
    assert isinstance(card.data, ModelCardData)
    meta = card.data.to_dict()
    assert set(meta) == {"library_name", "license", "tags"}, meta
    assert isinstance(meta["tags"], list) and all(isinstance(x, str) for x in meta["tags"])
    assert ModelCardData(**meta).to_dict() == meta

    nwb = "pynapple_A2929_headdirection/A2929-200711.nwb"
    assert f"`{Path(nwb).name}`" in card.text
    readme = shared_data("README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{nwb}`"))
    licence = row.strip("|").split(" | ")[-1]
    assert licence.startswith("MIT ") and meta["license"] == "mit", licence
    assert "MIT licence" in card.text

    with h5py.File(shared_data(nwb), "r") as f:
        times = f["units/spike_times"][:]
        areas = [a.decode() for a in f["units/location"][:]]
        epochs = dict(zip((t.decode() for t in f["intervals/epochs/tags"][:]),
                          zip(f["intervals/epochs/start_time"][:], f["intervals/epochs/stop_time"][:])))
    start, stop = epochs["wake"]
    wake = int(((times >= start) & (times <= stop)).sum())
    n_adn, n_ca1 = areas.count("adn"), areas.count("ca1")
    assert _missing(card.text, [
        f"({n_adn} head-direction units, `adn`) and CA1 ({n_ca1} units), {len(areas)} units in all",
        f"Wake epoch {start:.0f}-{stop:.0f} s only", f"{wake:,} spikes",
        f"{round((stop - start) / 30)} contiguous blocks of 30 s",
    ]) == [], (wake, n_adn, n_ca1, start, stop)
    # the wake epoch's spikes are the splits' plus those in the gaps left out between them
    assert wake >= sum(_json("a2929_wake.json")["train"]["n_spikes_by_split"].values())


def test_the_script_written_benchmarks_sections_are_their_json_rendered():
    """Each section a script renders from its JSON alone is that rendering, byte for byte: a rerun
    that rewrites the JSON without the text (or a hand edit of the figures) fails here."""
    import benchmark_connectivity
    import benchmark_streaming_memory
    import benchmark_training
    import decoding_baselines_recheck
    import decoding_repeated_splits
    import decoding_repeated_splits_recheck
    import figure_visual_attention

    training, memory = _json("training.json"), _json("streaming_memory.json")
    rendered = {
        "connectivity": benchmark_connectivity.render(_json("connectivity.json")),
        "training-speed": benchmark_training._section(training["results"], training["meta"]),
        "streaming-memory": benchmark_streaming_memory._section(memory["results"], memory["meta"]),
        "decoding-baselines-recheck": decoding_baselines_recheck.write_section(_json("decoding_baselines_recheck.json")),
        "decoding-repeated-splits": decoding_repeated_splits.write_section(_json("decoding_repeated_splits.json")),
        "decoding-repeated-splits-recheck":
            decoding_repeated_splits_recheck.write_section(_json("decoding_repeated_splits_recheck.json")),
        "visual-attention": figure_visual_attention.render(_json("visual_attention.json")),
    }
    assert [tag for tag, text in rendered.items() if text.strip() != _section(tag).strip()] == []


def test_the_multimodal_and_event_sections_are_their_json_rendered():
    """The head-direction, Allen multimodal and ripple-event sections are what their scripts'
    ``section`` makes of the JSON they wrote (the Allen run's ``--workers 3`` is not in its JSON)."""
    import benchmark_events
    import benchmark_multimodal
    import benchmark_multimodal_hd

    assert benchmark_multimodal_hd.section(_json("multimodal_a2929.json")) == _section("multimodal-a2929")
    assert benchmark_multimodal.section(_json("multimodal_allen.json"), workers=3) == _section("multimodal-allen")
    assert (benchmark_events.section(_json("events_a2929.json"), "benchmarks/events_a2929.json")
            == _section("events-a2929"))


def test_the_behaviour_decoding_section_is_its_json_rendered_notes_included():
    """``benchmark_decoding.write_section`` of ``benchmarks/decoding.json`` makes the shipped
    "Behaviour decoding" section byte for byte, its hand-written "Notes" (``meta.notes``, text kept in
    the JSON) included, so ``--report-only`` does not drop a note. Before, the acceptance note's
    sentences on plans 4-7 were in BENCHMARKS.md only and a ``--report-only`` rerun deleted them."""
    import benchmark_decoding as bd

    results = _json("decoding.json")
    fractions = tuple(results["meta"]["fractions"])
    rendered = bd.write_section(results, bd.summarise(results, fractions), fractions, "benchmarks/decoding_fewshot.png")
    assert rendered == _section("behaviour-decoding")


def test_the_decoding_notes_quote_the_provenance_record():
    """The decoding notes' figures from ``benchmarks/provenance.json`` (``scripts/benchmark_provenance.py``):
    the nelpy baselines on validation, the on-track threshold, the Steinmetz units' train-only rates
    and the overlap of the repeated splits' test sets."""
    prov = _json("provenance.json")
    val = prov["validation_baselines"]
    strided = {k: v["mean"] for k, v in val["strided"]["r2"].items()}
    gru = val["strided"]["r2"]["gru"]["per_seed"]
    track, rates = prov["nelpy_track_fit"], prov["steinmetz_unit_rates"]
    lift = track["test_liftoff_on_track_windows"]
    overlap = prov["split_overlap"]["nelpy"]
    text = _section("behaviour-decoding")
    assert _missing(text, [
        f"the GRU scores R² {strided['gru']:.3f} ({' / '.join(f'{x:.3f}' for x in gru)}), lasso {strided['lasso']:.3f}, "
        f"GLM {strided['glm']:.3f}, ridge {strided['ridge']:.3f}, MLP {strided['mlp']:.3f}; with tiling windows the GRU "
        f"scores {val['tiling']['r2']['gru']['mean']:.3f}",
        f"a continuum up to {track['continuum_max_px']:.0f} px and then jump to {track['carry_in']['min_px']:.0f}-"
        f"{track['carry_in']['max_px']:.0f} px", f"1.5 x their 99th percentile ({track['half_width_px']:.0f} px)",
        f"(Q3 + 3 IQR = {track['tukey_fence_px']:.0f} px)",
        f"({lift[0]['start_s_into_run']:.1f}-{lift[-1]['start_s_into_run']:.1f} s, {lift[0]['distance_px']:.0f}-"
        f"{lift[-1]['distance_px']:.0f} px from the axis)",
        f"(lowest {rates['drawn_units_min_train_rate_hz']:.2f} Hz;",
        f"{rates['candidates_train_trials_only']} candidates instead of {rates['candidates_whole_session']}",
    ]) == []
    lo, hi = overlap["test_stretches_per_split"]
    assert _missing(_section("decoding-repeated-splits"), [
        f"{lo}-{hi} contiguous stretches of 30-s blocks ({overlap['distinct_test_stretches']} distinct stretches over the "
        f"{len(overlap['split_seeds'])} splits; mean Jaccard overlap of two splits' test blocks "
        f"{overlap['mean_jaccard_test_blocks']:.2f}, of their decoded test windows "
        f"{overlap['mean_jaccard_decoded_test_windows']:.2f};",
    ]) == []


def test_the_generation_and_fidelity_sections_and_their_readings_quote_their_json():
    """The generation-speed and fidelity sections (written by their scripts at the end of a run,
    so not renderable alone) hold the tables their scripts make of the JSON, and the hand-written
    reading below them quotes the same figures."""
    import benchmark_generation
    import fidelity_report

    gen = _json("generation.json")
    section = _section("generation-speed")
    m = gen["meta"]
    assert benchmark_generation._table(gen["rows"]) in section
    assert f"({m['date']}, {m['machine']}, torch {m['torch']}, {m['threads']} threads)" in section

    fid = _json("fidelity_steinmetz.json")
    section = _section("generation-fidelity")
    assert [line for line in fidelity_report.table_lines(fid["fidelity"]) if line not in section] == []
    b, tm, half = fid["bits_per_spike"], fid["token_metrics"], fid["psth_split_half"]
    assert _missing(section, [
        f"{len(fid['units'])} units (random", f"{fid['n_test_trials']} test trials, {fid['n_test_windows']} windows",
        f"**bits per spike {b['bits_per_spike']:.3f}**", f"({b['n_spikes']:,} test spikes, {b['n_windows_truncated']} "
        "truncated", f"; {b['bits_per_spike_scored_rates_null']:.3f} against Poisson",
        f"unit id {tm['test/id_nll']:.3f} nats (unigram {tm['test/unigram_id_nll']:.3f}, Markov "
        f"{tm['test/markov_id_nll']:.3f}); dt {tm['test/dt_nll']:.3f} (marginal {tm['test/marginal_dt_nll']:.3f}, "
        f"Markov {tm['test/markov_dt_nll']:.3f})",
        f"r = {half['split_half_psth_corr_10ms']:.3f} (10 ms bins) and {half['split_half_psth_corr_50ms']:.3f}",
    ]) == []

    reading = _between((ROOT / "BENCHMARKS.md").read_text(), "**Generation speed.**", "<!-- behaviour-decoding:start")
    row = {(r["size"], r["use_cache"], r["batch"]): r for r in gen["rows"]}
    sps = {key: r["spikes_per_second"] for key, r in row.items()}
    floors = row["original", True, 1]["floors_ms"]
    floor_ms = floors["weights"] + floors["cross_attention"] + floors["encode_per_window"] / m["window_spikes"]
    default_floor = row["default", True, 1]["floors_ms"]
    one_spike = [f"{row['original', True, 1]['n_parameters'] / 1e6:.1f} M parameters, a "
                 f"{row['original', True, 1]['past_tokens']}-token context",
                 f"cached engine is {sps['original', True, 1] / sps['original', False, 1]:.1f}x",
                 f"at most {1000 / floor_ms:.0f} spikes/s", f"a floor of {floor_ms:.1f} ms per spike",
                 f"reaches {100 * sps['original', True, 1] * floor_ms / 1000:.0f}% of it",
                 f"{sps['original', True, 1]:.0f} spikes/s at batch 1 ({sps['original', True, 1] / 10:.0f}x",
                 f"{floors['weights']:.1f} ms;", f"context, 28 MB, {floors['cross_attention']:.1f} ms",
                 f"{floors['encode_per_window']:.0f} ms per window, {floors['encode_per_window'] / 100:.1f} ms per spike",
                 f"gives {sps['original', True, 64]:.0f}\nspikes/s",
                 f"gains only {sps['default', True, 1] / sps['default', False, 1]:.1f}x at batch 1",
                 f"and {sps['default', True, 64] / sps['default', False, 64]:.1f}x at batch 64",
                 f"about {default_floor['weights'] + default_floor['cross_attention']:.2f} ms",
                 f"a cached step costs about {1000 / sps['default', True, 1]:.0f} ms"]
    f = fid["fidelity"]
    tf, fr, can, poi = f["teacher_forced"], f["free_running"], f["teacher_forced_canonical"], f["poisson_surrogate"]
    one_spike += [
        f"*Bits per spike {b['bits_per_spike']:.3f}*", f"by {b['bits_per_spike']:.3f} bits per spike, and "
        f"{b['bits_per_spike_scored_rates_null']:.3f} when", f"{fid['n_test_windows']} test windows",
        f"(r = {tf['rate_corr']:.2f}, median generated/recorded\n  {tf['rate_ratio_median']:.2f} teacher-forced, "
        f"{fr['rate_ratio_median']:.2f} free-running; {tf['n_generated_spikes']:,} and {fr['n_generated_spikes']:,} "
        f"spikes against {tf['n_real_spikes']:,} recorded)",
        f"({can['rate_ratio_median']:.2f}; {can['n_generated_spikes']:,} spikes)",
        f"r = {tf['fano_corr']:.2f} to {max(fr['fano_corr'], can['fano_corr']):.2f} (surrogate\n  {poi['fano_corr']:.2f})",
        f"r = {tf['pairwise_corr_r']:.2f}\n  teacher-forced and {fr['pairwise_corr_r']:.2f} free-running (surrogate "
        f"{poi['pairwise_corr_r']:.2f})",
        f"(median KS {tf['isi_ks_median']:.3f} teacher-forced, {fr['isi_ks_median']:.3f} free-running, against\n  "
        f"{poi['isi_ks_median']:.3f};", f"is\n  {tf['isi_ks_floor_median']:.3f} here",
        f"{tf['pairwise_corr_generated_mean']:.3f} generated against {tf['pairwise_corr_real_mean']:.3f}\n  recorded",
        f"r = {half['split_half_psth_corr_10ms']:.3f} at 10 ms, {half['split_half_psth_corr_50ms']:.3f} at 50 ms",
        f"reach {tf['psth50_corr_mean']:.2f} to\n  {fr['psth50_corr_mean']:.2f} at 50 ms, against "
        f"{poi['psth50_corr_mean']:.2f} for the surrogate",
        f"from\n  {tf['binned_count_corr_mean']:.3f} to {fr['binned_count_corr_mean']:.3f}, and the pairwise structure "
        f"from {tf['pairwise_corr_r']:.2f} to {fr['pairwise_corr_r']:.2f}",
        f"*Unit-id F1* is {tf['id_f1']:.2f} against the surrogate's {poi['id_f1']:.2f}",
    ]
    assert _missing(reading, one_spike) == []


def test_the_readme_s_data_table_gives_the_data_readme_s_units_and_licences(shared_data):
    """Each recording of the data table (docs/data.md, once the README's) has the unit count and licence
    that ``../shared/data/README.md`` gives it."""
    def rows(text, header):
        table = text.split(header + "\n")[1].split("\n\n")[0]
        return {r[0].strip("`"): r for r in (line.strip("| ").split(" | ") for line in table.splitlines()[1:])}

    ours = rows((ROOT / "docs" / "data.md").read_text(), "| folder | recording | licence / citation |")
    theirs = rows(shared_data("README.md").read_text(),
                  "| folder | what | units | time base | extra modalities | licence / citation |")
    assert len(ours) == 5 and set(ours) <= set(theirs)
    for folder, (_, what, licence) in ours.items():
        units, their_licence = theirs[folder][2], theirs[folder][-1]
        assert re.search(r"\b(\d[\d,]*) units", what).group(1) == re.search(r"\b(\d[\d,]*)", units).group(1), folder
        name = licence.split(";")[0].split(" (")[0]  # "MIT", "CC-BY-4.0", "research use with citation"
        assert name in their_licence, (folder, licence, their_licence)


def test_the_readme_quotes_the_recorded_benchmarks():
    """The README's figures from recorded runs: the streaming-memory growth, and from the A2929
    card's run its ISI KS floor, its step count and the gap between its two bits-per-spike nulls;
    and the card metadata it says a push writes."""
    readme = documentation_text()  # README.md and docs/*.md, wherever each figure is stated
    peak = {(r["kind"], r["scale"]): r["peak_rss_mib"] for r in _json("streaming_memory.json")["results"]}
    grow = {kind: peak[kind, "10x"] / peak[kind, "1x"] for kind in ("streamed", "in_memory")}
    assert _missing(readme, [f"peak grew {grow['streamed']:.2f}x streamed against {grow['in_memory']:.2f}x in memory"]) == []
    from hf_neuroformer.hub import MODEL_CARD_LIBRARY_NAME, MODEL_CARD_TAGS

    rec = _json("a2929_wake.json")
    e = rec["evaluate_test"]
    assert _missing(readme, [
        f"tags ({', '.join(MODEL_CARD_TAGS)}; `library_name: {MODEL_CARD_LIBRARY_NAME}`)",  # what a push writes
        f"A2929 with 5 ms bins: about {e['isi_ks_floor_mean']:.2f})",
        f'train(rec, "runs/a2929")   # {rec["train"]["total_steps"]} steps',  # the card's run: the same call
        f"a similar gap of about {e['bits_per_spike'] - e['bits_per_spike_scored_rates_null']:.2f})",
    ]) == []
