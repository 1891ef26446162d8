"""Progress bars: redrawn in place in a terminal, at most every 30 s into a log file."""

import io
import os
import pty

from hf_neuroformer.progress import LOG_INTERVAL_S, progress_bar


def test_bar_into_a_file_redraws_rarely_and_in_a_terminal_often(monkeypatch):
    # this test measures a live bar: TQDM_DISABLE in the shell that runs the suite (the next test
    # shows the package honours it) would turn it off
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    log = io.StringIO()  # what `neuroformer train ... 2> log` writes into: not a terminal
    bar = progress_bar(total=1000, file=log)
    for _ in range(1000):
        bar.set_postfix(loss="1.0", refresh=False)
        bar.update(1)
    bar.close()
    # a 1000-step loop left ~1000 redraws in the file; now the first and the last
    assert bar.mininterval == LOG_INTERVAL_S == 30.0
    assert log.getvalue().count("\r") <= 3, log.getvalue().count("\r")
    leader, follower = pty.openpty()  # a real pseudo-terminal
    with os.fdopen(follower, "w") as tty:
        assert progress_bar(total=1, file=tty).mininterval == 0.1
    os.close(leader)
    assert progress_bar(total=1, file=log, mininterval=2.0).mininterval == 2.0  # an explicit value wins


def test_tqdm_disable_in_the_environment_turns_every_bar_off(monkeypatch):
    # the package passes disable= explicitly (progress=True by default), which tqdm lets win over
    # TQDM_DISABLE: a batch job's log kept every bar whatever the environment said
    monkeypatch.setenv("TQDM_DISABLE", "1")
    log = io.StringIO()
    bar = progress_bar(range(5), desc="training", file=log, disable=False)
    assert list(bar) == list(range(5)) and bar.disable and log.getvalue() == ""
    for off in ("0", "false", ""):
        monkeypatch.setenv("TQDM_DISABLE", off)
        log = io.StringIO()
        bar = progress_bar(total=1, desc="training", file=log)
        assert not bar.disable, off  # (tqdm's close() sets disable)
        bar.update(1)
        bar.close()
        assert "training" in log.getvalue(), off
    # every bar of the package is made by progress_bar: no module builds a tqdm bar of its own
    import hf_neuroformer

    src = os.path.dirname(hf_neuroformer.__file__)
    direct = []
    for root, _, files in os.walk(src):
        for name in files:
            if name.endswith(".py") and name != "progress.py":
                text = open(os.path.join(root, name), encoding="utf-8").read()
                if "from tqdm" in text or "import tqdm" in text:
                    direct.append(name)
    assert direct == []
