"""Break test of the `neuroformer` command's outputs (a systems neuroscientist's session on A2929):
an output name whose side files are itself, figure names matplotlib cannot write, and library
errors that named a Python field instead of the flag. Each is refused with one line naming the
flag, exit status 2, before any work and with nothing written.

The calls go through ``cli.main`` in this process (the code of the console script); data that
would be read is a missing file, so an error about it means the flag was checked too late.
"""

from hf_neuroformer import cli




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
