"""Break test of the `neuroformer` command's outputs (a systems neuroscientist's session on A2929):
an output name whose side files are itself, figure names matplotlib cannot write, and library
errors that named a Python field instead of the flag. Each is refused with one line naming the
flag, exit status 2, before any work and with nothing written.

The calls go through ``cli.main`` in this process (the code of the console script); data that
would be read is a missing file, so an error about it means the flag was checked too late.
"""

import pytest

from hf_neuroformer import cli

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


def err_of(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith(f"neuroformer {argv[0]}: error: "), err
    return last.split(": error: ", 1)[1]


def test_ablate_output_json_would_be_replaced_by_its_own_figures(capsys, tmp_path):
    # `ablate --output t.json` wrote the markdown table to t.json, then the figures (JSON) over it,
    # and printed "wrote t.json and t.json": the table was lost after every variant had trained
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    out = tmp_path / "t.json"
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                 "--output", out)
    assert msg.startswith("--output: ") and ".json" in msg and "markdown" in msg, msg
    assert not out.exists()


@pytest.mark.parametrize("name", ["e.json", "e.txt", "e"])
def test_evaluate_figure_format_checked_before_any_work(capsys, tmp_path, shared_data, name):
    # `evaluate --output e.json --figure e.txt` computed the metrics, wrote e.json, then failed
    # with matplotlib's "Format 'txt' is not supported" (no flag named): a half-written output
    out, fig = tmp_path / "m.json", tmp_path / name
    msg = err_of(capsys, "evaluate", "--real", shared_data(A2929), "--epoch", "wake", "--generated",
                 tmp_path / "missing.nwb", "--output", out, "--figure", fig)
    assert msg.startswith("--figure: expected a figure file name ending in an image format"), msg
    assert not out.exists() and not fig.exists()


@pytest.mark.parametrize("name", ["emb.json", "emb.npy", "emb.txt", "emb"])
def test_embed_output_must_be_a_figure_name(capsys, tmp_path, name):
    # `embed --output emb.json` wrote emb.npy and the metadata emb.json, then tried to draw the
    # figure over emb.json and failed ("Format 'json' is not supported"), exit 2 with two files left
    out = tmp_path / name
    msg = err_of(capsys, "embed", "--model", tmp_path / "no-model", "--data", tmp_path / "missing.nwb",
                 "--color-by", "ry", "--output", out)
    assert msg.startswith("--output: expected a figure file name ending in an image format"), msg
    assert sorted(p.name for p in tmp_path.iterdir()) == []
