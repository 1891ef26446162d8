"""Progress bars: redrawn in place in a terminal, at most every 30 s into a log file, a line each."""

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


def test_bar_into_a_file_redraws_at_the_first_update_30_s_after_the_last(monkeypatch):
    # tqdm's dynamic miniters grew to the iterations of one interval (~300 here), and its monitor
    # thread redraws a bar with miniters > 1 every maxinterval (10 s): a training log got a bar line
    # every 10 to 20 s, not every 30 s; without the monitor, a bar whose steps slowed down waited for
    # ~300 more steps. A fake clock drives the real bar: 300 fast steps, then slow ones.
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    now = [0.0]
    log = io.StringIO()
    bar = progress_bar(total=310, file=log)
    bar._time = lambda: now[0]
    bar.start_t = bar.last_print_t = 0.0
    draws = []
    for step in range(300):  # 0.1 s per step
        now[0] += 0.1
        if bar.update(1):
            draws.append(round(now[0], 1))
    assert bar.miniters <= 1  # nothing for tqdm's monitor to act on (it acts on miniters > 1)
    for step in range(10):  # 20 s per step
        now[0] += 20.0
        if bar.update(1):
            draws.append(round(now[0], 1))
    bar.close()
    assert draws == [30.0, 70.0, 110.0, 150.0, 190.0, 230.0], draws


def test_a_line_written_above_a_bar_reaches_a_log_file_at_once(monkeypatch):
    # `neuroformer train > log`: standard output into a file is block-buffered, and the step lines
    # written above the bar (bar.write) stayed in the buffer until a few kB or the end of the run
    raw = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 16), encoding="utf-8"))
    bar = progress_bar(total=2, file=io.StringIO())
    bar.write("step 1: train loss 1.0")
    assert raw.getvalue() == b"step 1: train loss 1.0\n"
    bar.close()


def test_a_log_file_gets_one_line_per_redraw_and_no_blank_line_before_a_step_line(monkeypatch):
    # `neuroformer train > log 2>&1`: before each step line written above the bar, tqdm cleared the bar
    # ('\r' + spaces + '\r'), and redrew it in place ('\r' + bar): read with carriage returns as line
    # breaks (an editor, a CI log, Python's text mode), the log had a whitespace-only line before every
    # step line. A stream that is not a terminal now gets each redraw as a line of its own.
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    log = io.StringIO()  # standard output and standard error into the same file
    monkeypatch.setattr("sys.stdout", log)
    monkeypatch.setattr("sys.stderr", log)
    bar = progress_bar(total=4, desc="training", unit="step", mininterval=0)
    for step in range(1, 5):
        bar.update(1)
        if step % 2 == 0:
            bar.write(f"step {step}: train loss 1.0")
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n"), repr(text)
    lines = text.splitlines()
    assert all(line.strip() for line in lines), lines  # no blank line
    assert [line for line in lines if line.startswith("step")] == ["step 2: train loss 1.0", "step 4: train loss 1.0"]
    assert lines[0].startswith("training:   0%") and all(line.startswith(("training:", "step ")) for line in lines)
    # each state once: not redrawn below a line written above the bar, nor repeated when it closes
    assert [line[:14] for line in lines] == ["training:   0%", "training:  25%", "training:  50%", "step 2: train ",
                                             "training:  75%", "training: 100%", "step 4: train "], lines
    # a bar that is not left (leave=False, e.g. an evaluation's) ends with its last state too (a file keeps
    # every line anyway), not with a carriage return
    log.truncate(0), log.seek(0)
    inner = progress_bar(total=3, desc="evaluating", leave=False, mininterval=30)
    inner.update(3)
    inner.close()
    assert "\r" not in log.getvalue() and [ln[:15] for ln in log.getvalue().splitlines()] == \
        ["evaluating:   0", "evaluating: 100"], repr(log.getvalue())
