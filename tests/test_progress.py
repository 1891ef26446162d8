"""Progress bars: redrawn in place in a terminal, at most every 30 s into a log file."""

import io
import os
import pty

from hf_neuroformer.progress import LOG_INTERVAL_S, progress_bar


def test_bar_into_a_file_redraws_rarely_and_in_a_terminal_often():
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
