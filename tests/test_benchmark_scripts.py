"""The benchmark scripts' process pool: results come back in task order.

``scripts/decoding_repeated_splits.py`` zips its tasks with ``run_pool``'s results (the results
carry no split seed), so a pool that returned them in completion order assigned baselines and
fine-tuning runs to the wrong split seeds. No recording is read here: the property is the
pool's, whatever the task computes. Also ``scripts/benchmark_provenance.py``'s overlap measures, on
the stored split plans (JSON only).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _bd():
    """``scripts/benchmark_decoding.py``, imported by the tests that use it: not at module level,
    since each spawned worker of ``run_pool`` imports this module to find its task, and the script
    imports ``hf_neuroformer`` (torch, transformers: about 5 s per worker)."""
    import benchmark_decoding

    return benchmark_decoding


def _later_tasks_finish_first(i: int) -> int:
    """Task ``i`` of 0..3 sleeps (3 - i) * 0.4 s, so with 2 workers task 1 ends before task 0."""
    time.sleep(0.4 * (3 - i))
    return i


def test_run_pool_returns_results_in_task_order_with_two_workers():
    bd = _bd()
    assert bd.run_pool(_later_tasks_finish_first, [0, 1, 2, 3], 2, "order") == [0, 1, 2, 3]
    assert bd.run_pool(_later_tasks_finish_first, [3, 2], 1, "order") == [3, 2]


def test_provenance_jaccard_on_known_intervals_and_the_stored_split_plans():
    """``scripts/benchmark_provenance.py``'s overlap measures: by length for intervals (overlapping
    intervals of one set counted once), exactly for window starts; and on the stored plans of the
    repeated splits they give the numbers the BENCHMARKS.md notes quote (test blocks 0.10, 22 / 14
    distinct stretches). Reads JSON only."""
    import itertools
    import json

    import numpy as np
    import pytest

    import benchmark_provenance as bp

    assert bp.interval_jaccard([[0, 10], [20, 30]], [[5, 25]]) == pytest.approx(10 / 30)
    assert bp.interval_jaccard([[0, 10], [5, 15]], [[0, 15]]) == pytest.approx(1.0)
    assert bp.interval_jaccard([[0, 1]], [[2, 3]]) == 0.0
    assert bp.set_jaccard([0.0, 0.25, 0.5], [0.25, 0.5, 0.75, 1.0]) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="start <= stop"):
        bp.interval_jaccard([[2, 1]], [[0, 1]])
    doc = json.loads(bp.SPLITS_JSON.read_text())
    got = {}
    for e in doc["entries"]:
        if e["dataset"] in ("nelpy", "a2929") and e["dataset"] not in got:
            segs = {s: e["plans"][str(s)]["test_segments"] for s in e["split_seeds"]}
            j = [bp.interval_jaccard(segs[a], segs[b]) for a, b in itertools.combinations(e["split_seeds"], 2)]
            distinct = {tuple(np.round(x, 6)) for v in segs.values() for x in v}
            got[e["dataset"]] = (round(float(np.mean(j)), 2), len(distinct))
    assert got == {"nelpy": (0.10, 22), "a2929": (0.10, 14)}


def test_replace_section_refuses_broken_markers_and_keeps_hand_written_text(tmp_path):
    """BENCHMARKS.md with a section's end marker lost (or a marker twice, or the end first):
    ``replace_section`` used to append a second copy, and the next run then replaced everything
    from the orphan start to the new end, deleting the hand-written note and another script's
    section in between. Now it raises naming the file and the markers and leaves the file as is;
    a well-formed section is replaced with the text around it kept."""
    import pytest

    from benchmarks_md import replace_section

    S, E = "<!-- a:start -->", "<!-- a:end -->"
    other = "<!-- b:start -->\nb\n<!-- b:end -->\n"
    broken = {
        "end lost": f"# B\n{S}\nold\nhand-written note\n{other}",
        "twice": f"{S}\nold1\n{E}\nnote\n{S}\nold2\n{E}\n",
        "end first": f"{E}\nnote\n{S}\nold\n",
    }
    for why, text in broken.items():
        p = tmp_path / f"{why}.md"
        p.write_text(text)
        for _ in range(2):  # the second run is the one that deleted text
            with pytest.raises(ValueError, match="a:start.*a:end"):
                replace_section(p, S, E, f"{S}\nNEW\n{E}")
        assert p.read_text() == text, why
    with pytest.raises(ValueError, match="section: must begin"):
        replace_section(tmp_path / "x.md", S, E, "NEW without markers")
    p = tmp_path / "ok.md"
    p.write_text(f"intro\n{S}\nold\n{E}\nafter note\n{other}")
    for _ in range(2):
        replace_section(p, S, E, f"{S}\nNEW\n{E}")
    assert p.read_text() == f"intro\n{S}\nNEW\n{E}\nafter note\n{other}"
    p = tmp_path / "missing" / "dir" / "new.md"  # --markdown in a folder not made yet
    replace_section(p, S, E, f"{S}\nNEW\n{E}")
    assert p.read_text().endswith(f"\n\n{S}\nNEW\n{E}\n")
    assert sorted(x.name for x in p.parent.iterdir()) == ["new.md"]  # no temporary left behind


def test_benchmark_decoding_refuses_bad_flags_before_any_work(capsys, tmp_path):
    """``--fractions abc`` was a bare ValueError traceback, ``--datasets ,`` a ZeroDivisionError
    after the setup, and ``--fractions 0,2`` / ``--seeds 0`` / ``--workers 0`` started pretraining;
    ``--datasets foo`` exited 1 with a bare message, and ``--datasets nelpy,nelpy`` ran nelpy twice;
    each is now a usage error (exit 2) naming the flag (and, for --datasets, the allowed names),
    before anything is loaded or written."""
    bd = _bd()
    import re

    import pytest

    allowed = re.escape(str(list(bd.DATASETS)))
    cases = [("--fractions", "abc", "comma-separated fractions"), ("--datasets", ",", "expected distinct datasets among " + allowed),
             ("--datasets", "foo", "unknown 'foo'; expected distinct datasets among " + allowed),
             ("--datasets", "nelpy,nelpy", "expected distinct datasets among " + allowed),
             ("--fractions", "0,2", r"in \(0, 1\]"), ("--fractions", "0.1,0.10", r"distinct fractions"), ("--fractions", "1.5", r"in \(0, 1\]"),
             ("--seeds", "0", ">= 1"), ("--seeds", "x", ">= 1"), ("--workers", "0", ">= 1"),
             # an empty item (one left out by mistake, maybe) was dropped: 'nelpy,,a2929' ran two datasets
             ("--datasets", "nelpy,,a2929", "an empty item in 'nelpy,,a2929'"),
             ("--fractions", "0.1,,1", "an empty item in '0.1,,1'")]
    # an --output-dir under a file cannot be made, even as root (a flag the code let through then
    # stops at its mkdir, instead of running the --quick benchmark into a new /nonexistent folder)
    (tmp_path / "file").write_text("")
    for flag, value, expect in cases:
        with pytest.raises(SystemExit) as exc:
            bd.main(["--quick", "--no-model", "--output-dir", str(tmp_path / "file" / "out"), flag, value])
        assert exc.value.code == 2, (flag, value)
        err = capsys.readouterr().err
        assert flag in err and re.search(expect, err), (flag, value, err)


def test_benchmark_outputs_are_written_atomically(tmp_path):
    """An interrupted write (here: text that cannot be encoded, failing mid-write) leaves the old
    JSON as it was and no temporary file; the scripts write their JSON through ``write_atomic``
    (``Path.write_text`` truncated the old file first, so a run killed while writing lost every
    dataset's results) and the decoding figure through ``hf_neuroformer.plotting.save_figure`` (atomic)."""
    bd = _bd()
    import json
    import re

    import pytest

    from benchmarks_md import write_atomic

    p = tmp_path / "decoding.json"
    p.write_text('{"datasets": {"nelpy": 1}}')
    with pytest.raises(UnicodeEncodeError):
        write_atomic(p, '{"datasets": {"a2929": "\ud800"}}')
    assert p.read_text() == '{"datasets": {"nelpy": 1}}'
    assert [x.name for x in tmp_path.iterdir()] == ["decoding.json"]
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    offenders = [f"{f.name}:{i}" for f in sorted(scripts.glob("*.py")) if f.name != "benchmarks_md.py" for i, line in
                 enumerate(f.read_text().splitlines(), 1) if re.search(r"\.write_text\(json\.dumps|\bfig\.savefig\(", line)]
    assert offenders == []
    results = json.loads((scripts.parent / "benchmarks" / "decoding.json").read_text())
    fractions = tuple(results["meta"]["fractions"])
    bd.plot(results, bd.summarise(results, fractions), fractions, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_git_commit_stamp_counts_code_changes_not_benchmark_outputs(tmp_path):
    """The ``run.commit`` stamp: rewriting BENCHMARKS.md or benchmarks/*.json (what the previous
    dataset's run just did) marked the next run ``+uncommitted`` though its code was the commit's,
    while a new, not yet added module under src/ left it clean. Now only code counts, untracked
    files included."""
    bd = _bd()
    import subprocess

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True,
                       capture_output=True)

    for rel in ("src/pkg/a.py", "scripts/s.py", "BENCHMARKS.md", "benchmarks/decoding.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "c")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "BENCHMARKS.md").write_text("y\n")
    (tmp_path / "benchmarks" / "decoding.json").write_text("y\n")
    assert bd.git_commit(tmp_path) == head
    (tmp_path / "src" / "pkg" / "b.py").write_text("new\n")
    assert bd.git_commit(tmp_path) == head + "+uncommitted"
    (tmp_path / "src" / "pkg" / "b.py").unlink()
    (tmp_path / "scripts" / "s.py").write_text("changed\n")
    assert bd.git_commit(tmp_path) == head + "+uncommitted"


def test_validation_sweep_checks_fraction_seeds_and_log_before_any_run(tmp_path, capsys):
    """``--fraction 0`` / ``2`` were accepted, ``--seeds 1,1`` ran seed 1 twice (its own seed parser,
    not ``benchmarks_md.seeds_arg``), and a ``--log`` in a missing folder failed only when the first
    row was appended, after its fine-tuning run; all are usage errors naming the flag."""
    import decoding_validation_sweep as vs

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs")]
    for extra, flag in ((["--fraction", "0"], "--fraction"), (["--fraction", "2"], "--fraction"),
                        (["--fraction", "0.5,1"], "--fraction"), (["--seeds", "1,1"], "--seeds"),
                        (["--seeds", "x"], "--seeds"), (["--seeds", ","], "--seeds"),
                        (["--log", str(tmp_path / "missing" / "l.jsonl")], "--log"),
                        (["--steps", "100", "--freeze-backbone-steps", "101"], "--freeze-backbone-steps"),
                        (["--freeze-backbone-steps", "-1"], "--freeze-backbone-steps"),
                        (["--split-seed", "0"], "--split-seed")):
        try:
            vs.main(base + extra)
        except SystemExit as exc:
            code = exc.code
        assert code == 2, extra
        assert flag in capsys.readouterr().err, extra
    assert not (tmp_path / "missing").exists()


def test_validation_sweep_of_nelpy_speed_reads_the_checkpoint_of_its_source_nelpy(tmp_path):
    """``--dataset nelpy_speed`` looked for ``<runs-dir>/nelpy_speed/pretrained`` (benchmark_decoding.py
    writes nelpy_speed's pretraining to ``<runs-dir>/nelpy/pretrained``: source_of) and made its temporary
    folder under ``<runs-dir>/nelpy_speed`` (FileNotFoundError); the three scripts share one path function."""
    import benchmark_decoding as bd
    import decoding_validation_sweep as vs

    assert bd.pretrained_dir(tmp_path, "nelpy_speed") == tmp_path / "nelpy" / "pretrained"
    assert bd.pretrained_dir(tmp_path, "nelpy_speed", 3) == tmp_path / "nelpy" / "split3" / "pretrained"
    assert bd.pretrained_dir(tmp_path, "a2929") == tmp_path / "a2929" / "pretrained"
    for extra, pre in (([], tmp_path / "nelpy" / "pretrained"),
                       (["--split-seed", "2"], tmp_path / "nelpy" / "split2" / "pretrained")):
        try:
            vs.main(["--dataset", "nelpy_speed", "--runs-dir", str(tmp_path), "--log", str(tmp_path / "l.jsonl")] + extra)
        except SystemExit as exc:
            msg = str(exc.code)
        assert msg.startswith(f"--runs-dir: no pretrained checkpoint at {pre};"), msg


def test_repeated_splits_rerun_keeps_other_entries_and_the_old_notes():
    """A rerun of one entry of ``decoding_repeated_splits.json`` (here: the stored file's first
    entry, rerun as is) replaces that entry in place, keeps every other entry unchanged, and
    keeps the replaced entry's hand-written notes (with its run's commit) under
    ``superseded_notes``; they were silently dropped."""
    import copy
    import json

    import decoding_repeated_splits as rs

    doc = json.loads(rs.JSON.read_text())
    before = copy.deepcopy(doc["entries"])
    assert before[0]["notes_md"]
    rerun = {**copy.deepcopy(before[0]), "notes_md": [], "run": {"commit": "new", "date": "today"}}
    rs.merge_entry(doc, rerun)
    assert [rs.entry_key(e) for e in doc["entries"]] == [rs.entry_key(e) for e in before]
    assert doc["entries"][1:] == before[1:]
    assert doc["entries"][0]["run"]["commit"] == "new" and doc["entries"][0]["notes_md"] == []
    assert doc["entries"][0]["superseded_notes"] == [{"commit": before[0]["run"]["commit"],
                                                      "date": before[0]["run"]["date"], "notes_md": before[0]["notes_md"]}]
    second = {**copy.deepcopy(before[0]), "notes_md": [], "run": {"commit": "newer", "date": "later"}}
    rs.merge_entry(doc, second)  # a note-less rerun keeps the older superseded notes
    assert doc["entries"][0]["superseded_notes"][0]["notes_md"] == before[0]["notes_md"]
    new = {**copy.deepcopy(before[0]), "split_seeds": [99]}
    rs.merge_entry(doc, new)
    assert len(doc["entries"]) == len(before) + 1 and doc["entries"][-1]["split_seeds"] == [99]
    # a run with the backbone frozen at first sits beside the one without; 0 / missing is the same entry
    frozen = copy.deepcopy(before[0])
    frozen["settings"]["freeze_backbone_steps"] = 125
    assert rs.entry_key(frozen) != rs.entry_key(before[0])
    frozen["settings"]["freeze_backbone_steps"] = 0
    assert rs.entry_key(frozen) == rs.entry_key(before[0])


def test_decoding_rerun_of_one_dataset_keeps_the_others_and_its_old_notes():
    """Merging a rerun of nelpy into the stored ``benchmarks/decoding.json``: the other datasets
    are kept as they were, and nelpy's hand-written notes about the replaced numbers are kept
    (with that run's commit) as superseded notes; the rerun dataset's record used to be rebuilt
    from scratch, silently dropping them."""
    bd = _bd()
    import copy
    import json

    old = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "decoding.json").read_text())
    before = copy.deepcopy(old)
    got = bd.carry_over(old, ["nelpy"])
    assert sorted(got["datasets"]) == sorted(n for n in before["datasets"] if n != "nelpy")
    assert all(got["datasets"][n] == before["datasets"][n] for n in got["datasets"])
    nelpy = before["datasets"]["nelpy"]
    assert got["superseded_notes"]["nelpy"][-1] == {"commit": nelpy["run"]["commit"], "date": nelpy["run"]["date"],
                                                    "notes_md": nelpy["notes_md"]}
    assert set(got["superseded_notes"]) == {"nelpy"}


def test_benchmark_ablation_checks_seeds_and_name_when_parsed(capsys):
    """``--seeds x`` was parsed only after the config and recording were loaded (a bare ValueError),
    and ``--name ../x`` would have written ``benchmarks/ablation_../x.json``; both are usage
    errors (exit 2) naming the flag, before anything is read. (The script's ``main`` in this
    process, as for benchmark_training and benchmark_decoding: argparse's exit is a SystemExit.)"""
    import argparse

    import benchmark_ablation as ba
    import pytest
    from benchmarks_md import seeds_arg

    with pytest.raises(argparse.ArgumentTypeError, match=r"an empty item in '0,,1'"):
        seeds_arg("0,,1")  # as the neuroformer command refuses one; it ran seeds 0 and 1
    assert seeds_arg(" 0, 1 ") == [0, 1]
    for flag, value in (("--seeds", "x"), ("--seeds", "1,1"), ("--name", "../x")):
        args = {"--name": "t", "--seeds": "0", flag: value}
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            ba.main(["--config", "/nonexistent.yaml", "--data", "/nonexistent", *[x for kv in args.items() for x in kv]])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"argument {flag}" in err, (flag, value, err[-300:])


def test_benchmark_training_refuses_a_repeated_case(capsys):
    """``--precisions fp32 fp32`` ran fp32 twice and kept only the second run's results (the first
    silently dropped); it is a usage error (exit 2) naming the flag, before any run. So are counts
    below their minimum: ``--runs 0`` failed in ``statistics.median`` after the cases, ``--threads 0``
    in the first run."""
    import pytest

    import benchmark_training as bt

    with pytest.raises(SystemExit) as exc:
        bt.main(["--precisions", "fp32", "fp32", "--runs", "1", "--steps", "1", "--warmup", "0"])
    assert exc.value.code == 2
    assert "--precisions: expected distinct cases" in capsys.readouterr().err
    for flag, bad, least in (("--runs", "0", 1), ("--steps", "-1", 1), ("--warmup", "-1", 0), ("--threads", "0", 1),
                             ("--runs", "2.5", 1)):
        with pytest.raises(SystemExit) as exc:
            bt.main(["--precisions", "fp32", flag, bad])
        assert exc.value.code == 2
        assert f"argument {flag}: expected an integer >= {least}, got '{bad}'" in capsys.readouterr().err


def test_benchmark_ablation_json_follows_its_flag_and_the_command_shows_the_seeds_as_typed():
    """``--markdown PATH`` moved the table but the JSON still went to benchmarks/ablation_<name>.json
    with no flag for it; it now has ``--json``, as benchmark_events / benchmark_multimodal*, with the
    default stated in --help. The reproduce command in the section printed ``--seeds [0, 1, 2]`` (a
    list since seeds_arg) where ``--seeds 0,1,2`` was typed."""
    import benchmark_ablation as ba

    p = ba.parser()
    base = ["--name", "t", "--config", "c.yaml", "--data", str(ba.ROOT.parent / "shared" / "d.nwb")]
    assert ba.json_path(p.parse_args(base)) == ba.ROOT / "benchmarks" / "ablation_t.json"
    assert ba.json_path(p.parse_args(base + ["--json", "/tmp/x/a.json"])) == Path("/tmp/x/a.json")
    assert "ablation_<name>.json" in " ".join(p.format_help().split())
    cmd = ba.command_line(p.parse_args(base + ["--seeds", "0,1,2", "--json", "/tmp/x/a.json"]))
    assert cmd == ("python scripts/benchmark_ablation.py --name t --config c.yaml --data ../shared/d.nwb "
                   "--steps 300 --seeds 0,1,2")
    assert "--seeds" not in ba.command_line(p.parse_args(base))
    # a non-default contrastive weight changes the +contrastive row: the command must carry it
    assert ba.command_line(p.parse_args(base + ["--contrastive-loss-weight", "0.1"])).endswith(
        "--steps 300 --contrastive-loss-weight 0.1")
    assert "--contrastive-loss-weight" not in ba.command_line(p.parse_args(base))


def test_benchmark_ablation_header_says_how_the_checkpoints_were_chosen():
    """The section's paragraph always said 'checkpoint chosen on validation', also where train selected
    no step for some runs (their last step scored, 'Best step n/a' under the table), as ``neuroformer
    ablate``'s header no longer does; it now uses the same words (checkpoint_choice). On the shipped
    A2929 run, the paragraph of BENCHMARKS.md is made again unchanged."""
    import json

    import benchmark_ablation as ba
    from hf_neuroformer.ablation import ablation_markdown
    from hf_neuroformer.training import load_yaml_config

    result = json.loads((ba.ROOT / "benchmarks" / "ablation_a2929.json").read_text())
    args = ba.parser().parse_args(["--name", "a2929", "--config", "configs/a2929_head_direction.yaml", "--data",
                                   str(ba.ROOT.parent / "shared" / "data" / "pynapple_A2929_headdirection" /
                                       "A2929-200711.nwb"), "--epoch", "position_time_support", "--steps", "300",
                                   "--seeds", "0,1,2"])
    batch = load_yaml_config(ba.ROOT / "configs" / "a2929_head_direction.yaml")[1].batch_size
    md = (ba.ROOT / "BENCHMARKS.md").read_text().split("<!-- ablation-a2929:start -->\n")[1]
    assert ba.section_header(args, result, batch) == md[:md.index("\n\n", md.index("\n\n") + 2) + 1]
    # train selected no step for seed 1's state-only run (validation loss never finite): its last step is scored
    result["per_seed"]["1"][0].update(best_step=None, checkpoint_selection="last step (validation loss never finite)")
    header = ba.section_header(args, result, batch)
    assert "at most 300 steps, checkpoint chosen on validation, except for 1 of 12 runs (their last step is scored: " \
           "see 'Best step n/a' below), figures on the test split." in header, header
    assert "\nBest step n/a: state-only (seed 1): no step was selected" in ablation_markdown(result, header)


def test_training_rerun_of_one_case_keeps_each_case_under_its_own_run():
    """``benchmark_training.py --precisions fp32`` merged into the stored ``benchmarks/training.json``:
    the section printed ONE 'Machine: ...' line (the newest run's machine, torch, threads, steps)
    over every case, kept ones included, and dated each kept row with the newest run's date when
    it had none. Now each case keeps its own ``run`` and the section names the cases of each run."""
    import copy
    import json

    import benchmark_training as bt

    old = json.loads((bt.ROOT / "benchmarks" / "training.json").read_text())
    assert all(bt.case_run(r, old["meta"])["machine"] for r in old["results"].values())  # each stored case: its run
    for name in ("fp32", "bf16", "bf16+ckpt", "fp32 orig-layout", "bf16 orig-layout"):
        del old["results"][name]["run"]  # as written before runs were recorded per case (the stored runs are recovered)
    stored = copy.deepcopy(old["results"])
    meta = {**old["meta"], "commit": "abc1234", "machine": "NEW MACHINE, 16 cores visible", "cpus": 16,
            "torch": "9.9", "date": "2026-12-02 03:00 UTC"}
    new = {"fp32": copy.deepcopy(stored["fp32"])}
    new["fp32"].pop("date", None)
    merged = bt.merge_results(old, new, meta)
    assert list(merged) == [k for k in bt.CASES if k in stored]
    assert merged["fp32"]["run"] == {"commit": "abc1234", "date": "2026-12-02 03:00 UTC",
                                     "machine": "NEW MACHINE, 16 cores visible", "cpus": 16, "torch": "9.9"}
    video = "fp32 orig-layout+video"  # written by the run the stored meta describes
    assert merged[video]["run"]["machine"] == old["meta"]["machine"]
    assert merged[video]["run"]["date"] == old["meta"]["date"]
    assert merged["bf16"]["run"]["machine"] is None and merged["bf16"]["run"]["date"] is None  # not recorded
    lines = bt._section(merged, meta).splitlines()
    new_line = [ln for ln in lines if "NEW MACHINE" in ln]
    assert new_line == [f"- fp32: 2026-12-02 03:00 UTC, commit `abc1234`, NEW MACHINE, 16 cores visible, torch 9.9; "
                        f"{stored['fp32']['runs'][0]['threads']} threads, 4 timed steps after 2 warm-up steps per run."]
    assert any(ln.startswith("- fp32 orig-layout+video, bf16 orig-layout+video: " + old["meta"]["date"])
               and old["meta"]["machine"] in ln for ln in lines)
    assert any(ln.startswith("- bf16, bf16+ckpt, fp32 orig-layout, bf16 orig-layout: an earlier run") for ln in lines)
    rows = {ln.split(" (")[0]: ln for ln in lines if ln.startswith("| this package")}
    assert "runs on 2026-12-02" in rows["| this package, fp32"]
    assert "2026-12-02" not in rows["| this package, bf16"] and "date not recorded" in rows["| this package, bf16"]
    assert "2026-12-02" not in rows[f"| this package, {video}"]
    merged_again = bt.merge_results(json.loads(json.dumps({"meta": meta, "results": merged})),
                                    {"bf16": copy.deepcopy(stored["bf16"])}, {**meta, "commit": "def5678"})
    assert merged_again["fp32"]["run"]["commit"] == "abc1234"  # a recorded run is kept as it is
    assert merged_again["bf16"]["run"]["commit"] == "def5678"


def test_repeated_splits_section_names_a_learning_rate_once_per_line():
    """An entry fine-tuned at a learning rate other than finetune's default (5e-4) is named by it
    in its section header, and its run line gives the rate once, as AdamW's; the run line used to
    repeat it ("AdamW 0.001, ..., learning rate 0.001"). A frozen-backbone entry names the freeze
    in both lines."""
    import copy
    import json

    import decoding_repeated_splits as rs

    doc = json.loads(rs.JSON.read_text())
    entry = copy.deepcopy(doc["entries"][0])
    entry["settings"].update(learning_rate=1e-3, freeze_backbone_steps=125)
    text = rs.write_section({"entries": [entry]})
    header = next(line for line in text.splitlines() if line.startswith("### "))
    run_line = next(line for line in text.splitlines() if line.startswith("Run: "))
    assert "learning rate 0.001" in header and "backbone frozen for the first 125 steps" in header
    assert "AdamW 0.001" in run_line and "learning rate 0.001" not in run_line
    assert "backbone frozen for the first 125 steps" in run_line
    entry["settings"].update(learning_rate=5e-4, freeze_backbone_steps=None)
    text = rs.write_section({"entries": [entry]})
    assert "learning rate" not in next(line for line in text.splitlines() if line.startswith("### "))


def test_generation_gpu_section_goes_after_the_cpu_one_and_a_rerender_replaces_it(tmp_path, capsys):
    """``benchmark_generation.py --render-gpu``: the GPU results (written on a GPU machine by
    ``--device cuda --out DIR``) become their own section after the CPU one, which a later CPU run
    replaces between its own markers; rendering again replaces the GPU section instead of adding a
    second; a --quick run is refused; the batch-1 line does not call a GPU rate a like-for-like
    multiple of the original's CPU rate. ``--device cuda`` without ``--out`` is refused."""
    import json

    import benchmark_generation as bg
    import pytest

    def row(size, cache, batch, sps):
        return {"size": size, "use_cache": cache, "batch": batch, "n_windows": 4, "n_parameters": 24e6 if size == "original" else 6e5,
                "past_tokens": 1146 if size == "original" else 200, "spikes_per_second": sps, "seconds": 400 / sps,
                "peak_extra_mib": 10.0, "floors_ms": {"weights": 0.5, "cross_attention": 0.1, "encode_per_window": 5.0} if cache and batch == 1 else None}

    rows = [row("default", True, 1, 900.0), row("default", False, 1, 300.0), row("original", True, 1, 500.0),
            row("original", False, 1, 50.0), row("original", True, 64, 20000.0)]
    meta = {"date": "2026-12-04 16:00 UTC", "gpu": "NVIDIA H200", "torch": "2.11.0", "cuda": "13.0", "transformers": "5.17.0",
            "quick": False}
    identity = [{"mode": m, "greedy": g, "windows": 16, "windows_differing": 0} for m in ("teacher_forced", "free_running")
                for g in (True, False)]
    src = tmp_path / "generation_gpu.json"
    src.write_text(json.dumps({"meta": meta, "rows": rows, "identity": identity}))
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# B\n\n{bg.START}\n## Generation speed\n\ncpu table\n{bg.END}\n\n## Training speed\n\nkept\n")
    dest = tmp_path / "out" / "generation_gpu.json"
    dest.parent.mkdir()
    assert bg.render_gpu(src, md, dest) == 0
    text = md.read_text()
    assert text.index(bg.END) < text.index(bg.GPU_START) < text.index(bg.GPU_END) < text.index("## Training speed")
    assert "cpu table" in text and "kept" in text and json.loads(dest.read_text())["rows"] == rows
    gpu = text[text.index(bg.GPU_START):text.index(bg.GPU_END)]
    assert "### GPU: NVIDIA H200" in gpu and "original, batch 1: cached / reference = **10.0x**" in gpu
    assert "**500 spikes/s** = 50x the original generator's ~10 spikes/s" in gpu and "not a like-for-like ratio" in gpu
    assert "for this fp32 model on the NVIDIA H200" in gpu and "free-running sampled: 16 of 16 windows identical" in gpu
    rows[2]["spikes_per_second"] = 700.0
    src.write_text(json.dumps({"meta": meta, "rows": rows, "identity": identity}))
    bg.render_gpu(src, md, dest)
    again = md.read_text()
    assert again.count(bg.GPU_START) == 1 and "**700 spikes/s**" in again and "**500 spikes/s**" not in again
    src.write_text(json.dumps({"meta": {**meta, "quick": True}, "rows": rows, "identity": identity}))
    with pytest.raises(SystemExit, match="--quick"):
        bg.render_gpu(src, md, dest)
    assert md.read_text() == again
    with pytest.raises(SystemExit):
        bg.main(["--device", "cuda"])
    assert "--device other than cpu needs --out DIR" in capsys.readouterr().err


def test_repeated_splits_recheck_pairs_the_stored_results_and_puts_its_section_after_the_repeated_splits(tmp_path):
    """``decoding_repeated_splits_recheck.py`` reads the Neuroformer results of every entry of
    ``decoding_repeated_splits.json`` holding a setting (nelpy's current+past entry: split seeds
    1-8) and pairs them as ``decoding_repeated_splits.paired`` does: with the stored baselines as
    "now", its comparison with the GRU is the entry's own. Its section goes right after the
    repeated-splits section and a second render replaces it; a split seed no entry holds is refused
    by name, before anything is fitted."""
    import json
    import shutil

    import decoding_repeated_splits as rs
    import decoding_repeated_splits_recheck as rr
    import pytest

    doc = json.loads(rs.JSON.read_text())
    found = rr.collect(doc, "nelpy", [1.0])
    assert found["split_seeds"] == list(range(1, 25)) and found["overrides"] == {"window_stride": 0.125}
    d = {"metric": "r2", "label": "R²", "higher": True, "overrides": found["overrides"], "split_seeds": found["split_seeds"],
         "neuroformer": found["neuroformer"], "run": {"commit": "abc1234", "date": "2026-01-01", "minutes": 1.0, "workers": 2},
         "results": {str(s): {"1.0": {"now": found["stored"][s]["1.0"], "stored": found["stored"][s]["1.0"]}}
                     for s in found["split_seeds"]}}
    d["summary"] = rr.summarise(d, [1.0])
    entry = next(e for e in doc["entries"] if e["dataset"] == "nelpy"
                 and e["settings"]["config_overrides"].get("decoding_pool") == "current+past")
    comp = next(c for c in d["summary"]["1.0"]["neuroformer"] if "current+past" in c["label"])
    assert comp["split_seeds"] == entry["split_seeds"]
    for key in ("vs_gru_now", "vs_gru_stored"):
        assert comp[key]["wins"] == entry["summary"]["1.0"]["paired"]["gru"]["wins"]
        assert comp[key]["wilcoxon_p"] == pytest.approx(entry["summary"]["1.0"]["paired"]["gru"]["wilcoxon_p"])
    md = tmp_path / "BENCHMARKS.md"
    shutil.copy(rr.ROOT / "BENCHMARKS.md", md)
    text = md.read_text()
    if rr.START in text:  # the section as committed: start from the file without it
        md.write_text(text[: text.index(rr.START)].rstrip("\n") + text[text.index(rr.END) + len(rr.END):])
    for _ in range(2):
        rr.render({"datasets": {"nelpy": d}}, md)
        text = md.read_text()
        assert text.count(rr.START) == 1 and text.index(rr.START) == text.index(rs.END) + len(rs.END) + 2
    with pytest.raises(SystemExit):
        rr.main(["--datasets", "nelpy", "--split-seeds", "1,99"])


def test_baselines_recheck_subset_run_keeps_the_other_datasets_with_their_run(tmp_path, capsys):
    """``decoding_baselines_recheck.py --datasets steinmetz`` replaced the stored results and the
    BENCHMARKS section with Steinmetz alone (nelpy, its speed and A2929 were lost from both). A subset
    run now keeps the other datasets' stored results, each with the run that refitted it, and the
    section names each run; stored results with other seeds are not mixed in."""
    import json

    import decoding_baselines_recheck as rb

    stored = json.loads((Path(rb.ROOT) / "benchmarks" / "decoding_baselines_recheck.json").read_text())
    assert set(stored["datasets"]) == {"nelpy", "nelpy_speed", "a2929", "steinmetz"}
    old = {"commit": "aaaaaaa", "date": "2026-01-01", "minutes": 6.0, "seeds": stored["seeds"],
           "fractions": stored["fractions"],
           "datasets": {n: {k: v for k, v in d.items() if k != "run"} for n, d in stored["datasets"].items()}}
    path = tmp_path / "recheck.json"
    path.write_text(json.dumps(old))
    run = {"commit": "bbbbbbb", "date": "2026-01-02", "minutes": 2.0, "datasets": ["steinmetz"]}
    new_steinmetz = dict(old["datasets"]["steinmetz"], run=run)
    out = rb.keep_other_datasets({"seeds": old["seeds"], "fractions": old["fractions"],
                                  "datasets": {"steinmetz": new_steinmetz}}, path)
    assert list(out["datasets"]) == ["nelpy", "nelpy_speed", "a2929", "steinmetz"]
    assert out["datasets"]["steinmetz"]["run"]["commit"] == "bbbbbbb"
    assert out["datasets"]["nelpy"]["run"] == {"commit": "aaaaaaa", "date": "2026-01-01", "minutes": 6.0,
                                               "datasets": ["nelpy", "nelpy_speed", "a2929", "steinmetz"]}
    assert out["datasets"]["nelpy"]["methods"] == old["datasets"]["nelpy"]["methods"]
    section = rb.write_section(out)
    assert ("Runs: commit `aaaaaaa` on 2026-01-01, 6.0 min on 2 CPU cores (nelpy, nelpy_speed, a2929); "
            "commit `bbbbbbb` on 2026-01-02, 2.0 min on 2 CPU cores (steinmetz).") in section
    assert "### nelpy: r2" in section and "### steinmetz: balanced_accuracy" in section
    other_seeds = {"seeds": [0], "fractions": old["fractions"], "datasets": {"steinmetz": new_steinmetz}}
    assert list(rb.keep_other_datasets(other_seeds, path)["datasets"]) == ["steinmetz"]
    said = capsys.readouterr().err  # not dropped without a word
    assert "nelpy, nelpy_speed, a2929" in said and "not kept" in said, said


def test_the_steinmetz_benchmark_draws_the_units_its_stored_results_were_drawn_with():
    """The binned reader's time support became the trials (its 0.1-s gaps are no recorded time), so
    ``firing_rates`` rose by the gaps' share and 227 units passed 2 Hz, not 208: benchmark_decoding,
    benchmark_provenance and fidelity_report would have drawn other units than the stored results.
    They keep their rule, the rate over the time domain, gaps included."""
    import json

    bd = _bd()
    rec, _, _, notes = bd.load_dataset("steinmetz")
    stored = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "decoding.json").read_text())
    want = stored["datasets"]["steinmetz"]["notes"]
    assert notes["units"] == want["units"]  # "... among the 208 firing >= 2.0 Hz ..."
    assert (rec.n_units, rec.n_spikes) == (want["n_units"], want["n_spikes"])


def test_figure_visual_attention_refuses_an_offset_no_trial_holds_before_training(capsys, shared_data):
    """``--offset 10`` (100-ms Allen trials of ten 10-ms windows) failed in the analysis after the
    training, with numpy's "index 0 is out of bounds", and ``--offset -1`` ran as well; both are
    refused naming --offset (the upper bound before the training, from the config and the data)."""
    import numpy as np
    import pytest

    import figure_visual_attention as fva
    from hf_neuroformer.io import read_allen_gratings

    with pytest.raises(SystemExit) as e:
        fva.parse_args(["--offset", "-1"])
    assert e.value.code == 2 and "--offset: expected a window offset into each trial >= 0, got -1" in \
        capsys.readouterr().err
    trials = read_allen_gratings(shared_data("allen_vcn_gratings")).trials
    assert np.allclose(np.diff(trials, axis=1), 0.1)
    fva.check_offset(9, trials, 0.01)  # the tenth window: the last whole one
    with pytest.raises(SystemExit, match=r"^--offset: 10 windows of 10 ms into each trial, but the shortest trial "
                                         r"holds 10 windows: expected an offset in 0\.\.9$"):
        fva.check_offset(10, trials, 0.01)


def test_figure_visual_attention_corr_needs_three_points_and_allows_for_rounding():
    """Break test: the script's _corr (the attention / luminance correlations of its report) tested
    std() > 0 exactly and took any number of points: over 2 patches it gave +1 or -1 whatever the
    maps, and a map even over the patches but for rounding (0.1 + 0.2 against 0.3) gave an r of
    rounding noise. It now is the fidelity metrics' Pearson r, NaN in both cases, as the package's
    patch_luminance_correlation."""
    import math

    import numpy as np

    import figure_visual_attention as fva
    from hf_neuroformer.metrics.fidelity import _pearson

    assert math.isnan(fva._corr([1.0, 2.0], [5.0, 3.0]))
    even = np.array([[0.1 + 0.2, 0.3], [0.3, 0.3]])  # constant but for rounding
    assert even.std() > 0 and math.isnan(fva._corr(even, [[1.0, 2.0], [3.0, 4.0]]))
    x, y = np.arange(12.0).reshape(3, 4), np.sin(np.arange(12.0)).reshape(3, 4)
    assert fva._corr(x, y) == _pearson(x.ravel(), y.ravel()) and np.isfinite(fva._corr(x, y))


def test_figure_visual_attention_takes_the_window_from_the_model_and_refuses_multi_frame_patches():
    """The report and the figure title said "windows of 10 ms" and "offset x 10 ms" whatever the
    model's current_window, and analyse() indexed the patch grid with per-frame masks, which raised
    numpy's IndexError after the maps were computed when a patch spans frames (patch_size[0] > 1)."""
    import copy
    import json
    from pathlib import Path

    import pytest

    import figure_visual_attention as fva

    out = json.loads((Path(fva.REPO) / "benchmarks" / "visual_attention.json").read_text())
    assert "windows of 10 ms" in fva.render(out)  # a JSON written before the key: the script's config, 10 ms
    wide = copy.deepcopy(out)
    wide["stats"].update(current_window_s=0.02, offset_windows=5)
    text = fva.render(wide)
    assert "windows of 20 ms; the figure pools the windows 100-120 ms after onset" in text
    assert fva.offset_span_ms(wide["stats"]) == "100-120"
    video = {"name": "video", "patch_size": [1, 8, 8]}
    fva.check_patch(video, "--model m")
    with pytest.raises(SystemExit, match=r"^--model m: the video modality 'video' has patch_size \[2, 8, 8\], patches "
                                         r"spanning 2 frames; .*needs patch_size\[0\] == 1"):
        fva.check_patch({**video, "patch_size": [2, 8, 8]}, "--model m")


def test_connectivity_benchmark_refuses_to_reuse_a_simulation_of_other_settings(tmp_path):
    """``--reuse`` took any ``sim.nwb`` in the work directory: one simulated with ``--seed 3`` was
    trained on and scored while the table said seed 0 (this run's ``--seed``). It is refused before
    any training, naming each flag that differs; the file's own settings pass."""
    import pytest

    import benchmark_connectivity as bc
    from hf_neuroformer.simulation import HubNetworkParams, read_network, simulate_hub_glm, write_network

    sim = tmp_path / "sim.nwb"
    write_network(simulate_hub_glm(HubNetworkParams(n_units=12, n_hubs=1, targets_per_hub=4), duration=2.0, seed=3),
                  sim)
    with pytest.raises(SystemExit, match=r"--reuse: .*sim\.nwb was simulated with other settings than this run's: "
                                         r"--units 300 \(the file: 12\); --hubs 3 \(the file: 1\); --seed 0 "
                                         r"\(the file: 3\); pass the file's values"):
        bc.main(["--reuse", "--workdir", str(tmp_path), "--kind", "hub-glm", "--duration", "2", "--no-write"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.nwb"]  # nothing trained
    same = bc.parse_args(["--reuse", "--kind", "hub-glm", "--units", "12", "--hubs", "1", "--duration", "2",
                          "--seed", "3"])
    bc._check_reused_simulation(read_network(sim), same, sim)
    # a reused model/ of other settings: the table gave this run's flags (hidden 64) beside its scores
    from hf_neuroformer import NeuroformerConfig

    NeuroformerConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64).save_pretrained(tmp_path / "model")
    with pytest.raises(SystemExit, match=r"--reuse: .*model was trained with other settings than this run's: "
                                         r"--current-window 0\.02 \(the model: 0\.1\); .*--hidden-size 64 \(the "
                                         r"model: 32\); pass the model's values"):
        bc.main(["--reuse", "--workdir", str(tmp_path), "--kind", "hub-glm", "--units", "12", "--hubs", "1",
                 "--duration", "2", "--seed", "3", "--no-write"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "sim.nwb"]


def test_pretrain_set_variants_get_their_own_folder_and_a_mismatched_checkpoint_is_refused(tmp_path, capsys):
    """``--pretrain-set`` (decoding_repeated_splits.py and decoding_validation_sweep.py) replaces the
    pretrained model's architecture or pretraining steps: bad keys, values, repeats and architectures the
    config refuses are usage errors naming the flag; a variant's runs go to a folder of their own (the
    current model's layout is unchanged), and a checkpoint found there that is not the variant's (its
    config.json / step count) is refused before any pretraining or fine-tuning; the current model's
    checkpoint is never read for a variant."""
    import json

    import decoding_repeated_splits as rs
    import decoding_validation_sweep as vs
    from tiny_configs import quiet

    import hf_neuroformer as nf

    base = ["--dataset", "nelpy", "--split-seed", "1", "--runs-dir", str(tmp_path),
            "--log", str(tmp_path / "log.jsonl")]
    for bad in (["--pretrain-set", "hidden_dropout=1"], ["--pretrain-set", "hidden_size=0"],
                ["--pretrain-set", "pretrain_steps=1.5"], ["--pretrain-set", "hidden_size=30"],
                ["--pretrain-set", "pretrain_steps=10", "--pretrain-set", "pretrain_steps=20"]):
        for main, args in ((vs.main, base + bad), (rs.main, ["--workers", "1", "--output-dir", str(tmp_path)] + bad)):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code
            assert code == 2, bad
            assert "--pretrain-set" in capsys.readouterr().err, bad
    try:
        vs.main(base[:2] + base[4:] + ["--pretrain-set", "pretrain_steps=10"])  # no --split-seed
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and "--pretrain-set" in capsys.readouterr().err

    assert rs.variant_root(tmp_path, {}) == tmp_path
    longer, wider = {"pretrain_steps": 3000}, {"hidden_size": 128, "pretrain_steps": 3000}
    assert len({rs.variant_root(tmp_path, v) for v in (longer, wider, {})}) == 3
    assert rs.variant_model(wider) == dict(rs.bd.MODEL, hidden_size=128)

    # the current model's checkpoint of split seed 1 (1000 steps), in its own place
    def save_current(pre):
        cfg = nf.NeuroformerConfig(**rs.bd.DATASETS["nelpy"]["config"], **rs.bd.MODEL, split_seed=1, vocab_size=40)
        quiet(nf.NeuroformerForPreTraining(cfg).save_pretrained, pre)
        (pre / "metrics.json").write_text(json.dumps({"total_steps": 1000}))

    current = tmp_path / "nelpy" / "split1" / "pretrained"
    save_current(current)
    for sets in (longer, wider):
        flags = [a for k, v in sets.items() for a in ("--pretrain-set", f"{k}={v}")]
        pre = rs.variant_root(tmp_path, sets) / "nelpy" / "split1" / "pretrained"
        try:  # the current checkpoint is not taken for the variant
            vs.main(base + flags)
        except SystemExit as exc:
            msg = str(exc.code)
        assert f"no pretrained checkpoint at {pre}" in msg and "--pretrain-set pretrain_steps=3000" in msg
        save_current(pre)  # the current model's checkpoint copied into the variant's place
        try:
            vs.main(base + flags)
        except SystemExit as exc:
            msg = str(exc.code)
        assert msg.startswith("--runs-dir: the checkpoint") and "pretraining steps" in msg
        assert ("hidden_size" in msg) == ("hidden_size" in sets)
        settings = dict(rs.benchmark_settings("nelpy"), pretrain_overrides=sets, pretrain_steps=3000)
        try:
            rs.run_entry("nelpy", [1], [1.0], settings, 1, tmp_path)
        except SystemExit as exc:
            msg = str(exc.code)
        assert msg.startswith(f"--output-dir: the checkpoint {pre}") and "pretraining steps" in msg
    assert not (tmp_path / "log.jsonl").exists()

    # a variant's results are an entry of their own, named in its header
    doc = json.loads(rs.JSON.read_text())
    entry = json.loads(json.dumps(doc["entries"][0]))
    assert rs.entry_key(entry) == rs.entry_key(doc["entries"][0])
    entry["settings"]["pretrain_overrides"] = longer
    assert rs.entry_key(entry) != rs.entry_key(doc["entries"][0])
    header = next(line for line in rs.write_section({"entries": [entry]}).splitlines() if line.startswith("### "))
    assert "pretrained model pretrain_steps=3000" in header



def test_multitask_fine_tuning_adds_the_extra_target_and_still_selects_on_the_dataset_s_own_metric(tmp_path, capsys):
    """``decoding_validation_sweep.py --extra-targets speed`` (nelpy): speed is decoded beside position by the
    same fine-tuning (``finetune_targets``: one target each, in that order), and the checkpoint is chosen on
    position's validation R² (``finetune``'s ``"auto"`` alone would choose on the summed loss of both
    targets), a choice ``finetune`` accepts for these targets; without extra targets nothing changes. An
    unknown, repeated or the dataset's own target is a usage error naming the flag, before any run."""
    import benchmark_decoding as bd
    import decoding_validation_sweep as vs

    from hf_neuroformer.finetuning import selection_metric

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs"), "--log", str(tmp_path / "l.jsonl")]
    for bad in ("y", "x", "speed,speed"):
        try:
            vs.main(base + ["--extra-targets", bad])
        except SystemExit as exc:
            code = exc.code
        assert code == 2, bad
        err = capsys.readouterr().err
        assert "--extra-targets" in err and "(speed)" in err, bad
    assert not (tmp_path / "l.jsonl").exists()

    opts = dict(class_weight="balanced", select_on="auto")
    target, extra, select_on = bd.finetune_targets("nelpy", dict(opts, extra_targets=["nelpy_speed"]))
    assert (target.label, [t.label for t in extra], select_on) == ("x", ["speed"], "x/r2")
    dicts = [{"name": t.name, "kind": t.kind, "column": t.column} for t in (target, *extra)]
    assert selection_metric(dicts, select_on) == ("x/r2", True, "highest validation x/r2")
    assert selection_metric(dicts, "auto")[0] == "loss"  # what "auto" would have chosen on
    target, extra, select_on = bd.finetune_targets("nelpy", opts)
    assert (target.label, extra, select_on) == ("x", [], "auto")
    target, extra, _ = bd.finetune_targets("nelpy_speed", dict(opts, extra_targets=["nelpy"]))
    assert (target.label, [t.label for t in extra]) == ("speed", ["x"])


def test_validation_sweep_refuses_a_bad_ema_decay_before_any_run(tmp_path, capsys):
    """``decoding_validation_sweep.py --ema-decay D`` (plan 6: finetune's ema_decay, Polyak averaging of the
    fine-tuned weights): a decay outside (0, 1) is a usage error naming the flag and the expectation, before
    any checkpoint is read or row written (the option did not exist before)."""
    import decoding_validation_sweep as vs
    import pytest

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs"), "--log", str(tmp_path / "l.jsonl")]
    for bad in ("1", "0", "-0.5", "nan"):
        with pytest.raises(SystemExit) as exc:
            vs.main(base + ["--ema-decay", bad])
        assert exc.value.code == 2, bad
        err = capsys.readouterr().err
        assert "--ema-decay: expected None (off) or a number in (0, 1)" in err, (bad, err)
    with pytest.raises(SystemExit) as exc:  # a good decay goes on to look for the checkpoint
        vs.main(base + ["--ema-decay", "0.99"])
    assert "no pretrained checkpoint" in str(exc.value.code)
    assert not (tmp_path / "l.jsonl").exists()


def test_validation_sweep_refuses_a_bad_spike_dropout_before_any_run(tmp_path, capsys):
    """``decoding_validation_sweep.py --spike-dropout P`` (plan 7: finetune's spike_dropout, thinning of the
    training windows): a P outside [0, 1) is a usage error naming the flag and the expectation, before any
    checkpoint is read or row written; a good P goes on to look for the checkpoint (the option did not exist
    before)."""
    import decoding_validation_sweep as vs
    import pytest

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs"), "--log", str(tmp_path / "l.jsonl")]
    for bad in ("1", "-0.1", "nan"):
        with pytest.raises(SystemExit) as exc:
            vs.main(base + ["--spike-dropout", bad])
        assert exc.value.code == 2, bad
        err = capsys.readouterr().err
        assert "--spike-dropout: expected the probability that each spike token" in err, (bad, err)
    with pytest.raises(SystemExit) as exc:
        vs.main(base + ["--spike-dropout", "0.15"])
    assert "no pretrained checkpoint" in str(exc.value.code)
    assert not (tmp_path / "l.jsonl").exists()


def test_validation_sweep_refuses_a_bad_anchor_decay_before_any_run(tmp_path, capsys):
    """``decoding_validation_sweep.py --anchor-decay L`` (plan 8: finetune's anchor_decay, the pull towards the
    pretrained weights): an L that is not a number > 0, or one whose product with --learning-rate reaches 1, is a
    usage error naming the flag and the expectation, before any checkpoint is read or row written; a good L goes
    on to look for the checkpoint (the option did not exist before)."""
    import decoding_validation_sweep as vs
    import pytest

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs"), "--log", str(tmp_path / "l.jsonl"),
            "--learning-rate", "0.001"]
    for bad, said in (("0", "expected None (off) or a number > 0"), ("-4", "expected None (off) or a number > 0"),
                      ("nan", "expected None (off) or a number > 0"), ("1000", "expected learning_rate * --anchor-decay < 1")):
        with pytest.raises(SystemExit) as exc:
            vs.main(base + ["--anchor-decay", bad])
        assert exc.value.code == 2, bad
        err = capsys.readouterr().err
        assert f"--anchor-decay: {said}" in err, (bad, err)
    with pytest.raises(SystemExit) as exc:
        vs.main(base + ["--anchor-decay", "4.0"])
    assert "no pretrained checkpoint" in str(exc.value.code)
    assert not (tmp_path / "l.jsonl").exists()


def test_validation_sweep_refuses_bad_hl_gauss_settings_before_any_run(tmp_path, capsys):
    """``decoding_validation_sweep.py --regression-loss hl_gauss`` (plan 9: the histogram loss of the position
    head): a missing or bad --num-bins / --hl-gauss-sigma-ratio, either without the loss, or the loss for a
    dataset whose target is not a regression, is a usage error naming the flag before any checkpoint is read
    or row written; good settings go on to look for the checkpoint."""
    import decoding_validation_sweep as vs
    import pytest

    base = ["--dataset", "nelpy", "--runs-dir", str(tmp_path / "no_runs"), "--log", str(tmp_path / "l.jsonl")]
    hl = ["--regression-loss", "hl_gauss"]
    for extra, said in ((hl + ["--hl-gauss-sigma-ratio", "0.75"], "--num-bins: expected an integer >= 2"),
                        (hl + ["--num-bins", "1", "--hl-gauss-sigma-ratio", "0.75"], "--num-bins: expected an integer >= 2"),
                        (hl + ["--num-bins", "64"], "--hl-gauss-sigma-ratio: expected a finite number > 0"),
                        (hl + ["--num-bins", "64", "--hl-gauss-sigma-ratio", "0"],
                         "--hl-gauss-sigma-ratio: expected a finite number > 0"),
                        (["--num-bins", "64"], "--num-bins / --hl-gauss-sigma-ratio: only with --regression-loss hl_gauss")):
        with pytest.raises(SystemExit) as exc:
            vs.main(base + extra)
        assert exc.value.code == 2, extra
        err = capsys.readouterr().err
        assert said in err, (extra, err)
    with pytest.raises(SystemExit) as exc:
        vs.main(["--dataset", "a2929"] + base[2:] + hl + ["--num-bins", "64", "--hl-gauss-sigma-ratio", "0.75"])
    assert exc.value.code == 2 and "a2929's target is circular, not a regression" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        vs.main(base + hl + ["--num-bins", "64", "--hl-gauss-sigma-ratio", "0.75"])
    assert "no pretrained checkpoint" in str(exc.value.code)
    assert not (tmp_path / "l.jsonl").exists()


def test_fidelity_report_table_shows_the_spike_timing_f1_with_its_chance_levels(shared_data):
    """``scripts/fidelity_report.py``'s table had no spike-timing rows, though ``neuroformer evaluate``
    and train's metrics.json report the F1 at 5, 10 and 25 ms with two chance levels. Each column is
    scored by the script's ``score`` (compare_recordings, which holds spike_timing_f1's keys) and
    the table gains one row per tolerance: the F1, then the Poisson and window-shuffle levels ± SD,
    equal to what ``spike_timing_f1`` gives on the same recordings. Real Allen trials (100 ms
    windows) against the script's own Poisson surrogate, one seed per column."""
    import re

    import pytest

    import fidelity_report as fr
    import hf_neuroformer as nf
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.metrics import spike_timing_f1

    rec = read_allen_gratings(shared_data("allen_vcn_gratings")).select_units(range(30))
    support = rec.trials[:40]
    config = nf.NeuroformerConfig(current_window=0.1, dt_resolution=0.01)
    generated = {c: fr._poisson_surrogate(rec, support, rec.firing_rates(), seed)
                 for seed, (c, _) in enumerate(fr.COLUMNS)}
    lines = fr.table_lines({c: fr.score(rec, g, config) for c, g in generated.items()})
    wants = {c: spike_timing_f1(rec, g) for c, g in generated.items()}
    number = r"(\d\.\d{3})"
    cell = re.compile(rf"^{number} \(Poisson {number} ± {number}; shuffle {number} ± {number}\)$")
    for ms in (5, 10, 25):
        rows = [line for line in lines if line.startswith(f"| spike-timing F1, same unit within {ms} ms (chance "
                                                          "levels ± SD over 3 draws) |")]
        assert len(rows) == 1, lines
        assert rows[0].count("|") == len(fr.COLUMNS) + 2, rows  # a cell per column
        cells = [c.strip() for c in rows[0].strip("|").split("|")[1:]]
        for (col, _), text in zip(fr.COLUMNS, cells):
            want = wants[col]
            key = f"timing_f1_{ms}ms"
            m = cell.match(text)
            assert m, text
            got = [float(x) for x in m.groups()]
            assert got == pytest.approx([want[k] for k in (key, f"{key}_chance_poisson", f"{key}_chance_poisson_sd",
                                                           f"{key}_chance_shuffle", f"{key}_chance_shuffle_sd")],
                                        abs=5e-4), (col, ms)
    # one cell per column in every row: the bare pipes of "mean |log2 rate ratio|" made that row seven cells,
    # so GitHub showed "log2 rate ratio" under teacher-forced, each number two columns right, the last two dropped
    assert [len(re.findall(r"(?<!\\)\|", line)) for line in lines] == [len(fr.COLUMNS) + 2] * len(lines), lines
    assert lines[-1].startswith("| recorded spikes in the same windows |")  # the counts stay last
    assert lines[-2].startswith("| generated spikes (recorded in the same windows: see n_real_spikes) |")



def test_a2929_card_record_puts_the_run_s_json_numbers_in_its_section(tmp_path):
    """``record_a2929.py`` on a run folder of ``reproduce_a2929.sh`` (its ``model/metrics.json`` and
    ``evaluate_test.json``, here with the keys it reads and made-up values) copies those numbers into
    its JSON with the run's commit, date and machine, and puts them, rounded as the model card quotes
    them, into its BENCHMARKS.md section, which a second run replaces in place, keeping the rest of
    the file; a run folder without a key is refused naming it, before anything is written."""
    import json

    import pytest
    import record_a2929 as ra

    train = {k: 0.5 + i / 100 for i, k in enumerate(ra.TRAIN_KEYS)}
    train.update({"test/id_nll": 1.52486, "test/unigram_id_nll": 2.30426, "test/markov_id_nll": 1.80181,
                  "num_parameters": 556582, "n_train_windows": 4130, "n_validation_windows": 840, "n_test_windows": 860,
                  "n_spikes_by_split": {"train": 35903, "validation": 7349, "test": 7514},
                  "n_truncated_spikes_by_split": {"train": 0, "validation": 0, "test": 3}, "n_truncated_past_spikes": 2,
                  "checkpoint_selection": "lowest validation loss", "best_step": 1430, "total_steps": 1560,
                  "train_time_s": 502.4, "total_time_s": 515.0, "unused": 1.0})
    evaluate = {k: 0.1 + i / 1000 for i, k in enumerate(ra.EVALUATE_KEYS)}
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "metrics.json").write_text(json.dumps(train))
    (run / "evaluate_test.json").write_text(json.dumps(evaluate))
    md, out = tmp_path / "BENCHMARKS.md", tmp_path / "a2929_wake.json"
    md.write_text("# Benchmarks\n\nhand-written text\n")
    argv = [str(run), "--commit", "abc1234", "--date", "2026-12-06", "--machine", "2 CPU cores", "--json", str(out),
            "--markdown", str(md)]
    for _ in range(2):
        assert ra.main(argv) == 0
        rec = json.loads(out.read_text())
        text = md.read_text()
        assert text.startswith("# Benchmarks\n\nhand-written text\n") and text.count(ra.START) == 1
    del train["unused"]
    assert rec == {"card": ra.CARD, "command": "OMP_NUM_THREADS=1 scripts/reproduce_a2929.sh OUTDIR", "commit": "abc1234",
                   "date": "2026-12-06", "machine": "2 CPU cores", "train": train, "evaluate_test": evaluate}
    assert ra.section(rec, str(out)) in text
    rows = dict(row.strip("| ").split(" | ") for row in text.splitlines() if row.startswith("| "))
    assert rows["`test/id_nll` (Neuroformer)"] == "**1.5249** (33.8 % below unigram, 15.4 % below Markov)"
    assert rows["`test/unigram_id_nll` (unit frequencies)"] == "2.3043"
    assert rows["truncated spikes"] == "3 of 7,514 test spikes (2 past-window spikes)"
    shown = {f"{train[k]:.4f}" for k in ("test/dt_nll", "test/markov_dt_nll", "test/marginal_dt_nll", "test/id_f1",
                                         "test/rate_corr")} | {f"{v:.3f}" for v in evaluate.values()}
    assert shown <= {v.strip("*") for v in rows.values()}
    assert "1,560 steps" in text and "step 1,430" in text and "abc1234" in text and str(out) in text
    del evaluate["isi_ks_mean"]
    (run / "evaluate_test.json").write_text(json.dumps(evaluate))
    out.unlink()
    before = md.read_text()
    with pytest.raises(ValueError, match="isi_ks_mean"):
        ra.main(argv)
    assert md.read_text() == before and not out.exists()


def test_repeated_splits_hl_gauss_option_is_checked_recorded_and_kept_beside_the_mse_entry(capsys):
    """``decoding_repeated_splits.py --regression-loss hl_gauss --num-bins K --hl-gauss-sigma-ratio R``
    (plan 10, issue 4): refused before anything runs for a classification dataset, for bins without
    hl_gauss, or for bins the HL-Gauss head refuses, each naming the option; an entry run with it is an
    entry of its own beside the MSE entry of the same split seeds (it used to replace it: the entry key
    did not hold the loss), and its section header names the loss."""
    import copy
    import json

    import decoding_repeated_splits as rs
    import pytest

    for argv, words in ((["--dataset", "steinmetz", "--regression-loss", "hl_gauss", "--num-bins", "64",
                          "--hl-gauss-sigma-ratio", "0.75"], "not a regression"),
                        (["--dataset", "nelpy", "--num-bins", "64"], "only with --regression-loss hl_gauss"),
                        (["--dataset", "nelpy", "--regression-loss", "hl_gauss", "--num-bins", "4",
                          "--hl-gauss-sigma-ratio", "0.75"], "--num-bins")):
        with pytest.raises(SystemExit):
            rs.main(argv)
        err = capsys.readouterr().err
        assert words in err and "unrecognized arguments" not in err, err
    doc = json.loads(rs.JSON.read_text())
    mse = next(e for e in doc["entries"] if e["dataset"] == "nelpy")
    hl = copy.deepcopy(mse)
    hl["settings"]["regression_loss"] = {"loss": "hl_gauss", "num_bins": 64, "hl_gauss_sigma_ratio": 0.75}
    hl["run"]["commit"] = "hlgauss"
    merged = rs.merge_entry({"entries": [copy.deepcopy(mse)]}, hl)
    assert [e["run"]["commit"] for e in merged["entries"]] == [mse["run"]["commit"], "hlgauss"]
    header = next(line for line in rs.write_section({"entries": [hl]}).splitlines() if line.startswith("### "))
    assert "x trained with HL-Gauss (64 bins, sigma 0.75 bin widths)" in header
    assert "HL-Gauss" not in next(line for line in rs.write_section({"entries": [mse]}).splitlines()
                                  if line.startswith("### "))
