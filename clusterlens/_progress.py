"""Progress reports that suit where they go: a bar in a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns several times a second. In a terminal (or a
notebook, where tqdm draws a widget) that is what one wants; written to a file or a batch
system's log, every redraw stays, and a demo's log grew to 1 MB of them. :func:`progress`
returns tqdm's bar where the output is a terminal or a notebook, and otherwise a
:class:`LogProgress` that prints one plain line every ``interval`` seconds (and one at the
end), with the same methods the library calls (``update``, ``set_postfix``, ``close``,
``write``, use as a context manager).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["DEFAULT_INTERVAL", "LogProgress", "progress", "write"]

#: Seconds between two lines of a :class:`LogProgress`.
DEFAULT_INTERVAL = 30.0


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _in_notebook() -> bool:
    """Whether tqdm.auto chose its notebook widget (a Jupyter kernel with ipywidgets)."""
    if "IPython" not in sys.modules:
        return False
    import tqdm.auto
    import tqdm.std

    return tqdm.auto.tqdm is not tqdm.std.tqdm


def progress(
    total: int | None = None,
    *,
    desc: str | None = None,
    unit: str = "it",
    initial: int = 0,
    disable: bool = False,
    leave: bool = True,
    file: TextIO | None = None,
    interval: float = DEFAULT_INTERVAL,
):
    """A progress bar on a terminal or in a notebook, plain lines elsewhere.

    Parameters
    ----------
    total : int, optional
        Number of steps expected.
    desc : str, optional
        Label in front of the count.
    unit : str
        Name of one step ("img", "chunk"...).
    initial : int
        Steps already done before this run (a resumed job); not counted in the rate.
    disable : bool
        Report nothing (the object still accepts every call).
    leave : bool
        Keep the final state on screen; for a :class:`LogProgress`, print a last line at
        :meth:`~LogProgress.close`.
    file : file-like, optional
        Where to report; ``sys.stderr`` by default.
    interval : float
        Seconds between two lines when the output is not a terminal.
    """
    stream = sys.stderr if file is None else file
    if not disable and (_in_notebook() or _is_terminal(stream)):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=file)
    return LogProgress(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        disable=disable,
        leave=leave,
        file=file,
        interval=interval,
    )


def write(message: str, file: TextIO | None = None) -> None:
    """Print a line without breaking a terminal bar in progress (``tqdm.write``)."""
    from tqdm import tqdm

    tqdm.write(message, file=file)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LogProgress:
    """Progress as plain lines, for output that is not a terminal (a file, a batch log).

    Prints ``desc: n/total unit (p%), elapsed, rate, time left`` at most once every
    ``interval`` seconds, when :meth:`update` is called, and once more at :meth:`close` when
    ``leave`` is true. Parameters as :func:`progress`; ``clock`` returns seconds
    (default ``time.monotonic``; tests pass their own).
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str | None = None,
        unit: str = "it",
        initial: int = 0,
        disable: bool = False,
        leave: bool = True,
        file: TextIO | None = None,
        interval: float = DEFAULT_INTERVAL,
        clock=None,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = int(initial)
        self.initial = int(initial)
        self.disable = disable
        self.leave = leave
        self.interval = float(interval)
        self._file = file
        self._clock = clock = time.monotonic if clock is None else clock
        self._start = self._last = clock()
        self._postfix: dict[str, object] = {}
        self._printed_n: int | None = None
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; print a line if ``interval`` seconds have passed."""
        self.n += n
        if self.disable or self._closed:
            return
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            self._print(now)

    def set_postfix(self, refresh: bool = True, **values) -> None:
        """Values shown after the count (``failed=3``) on the next line printed."""
        self._postfix = dict(values)

    def write(self, message: str) -> None:
        """Print a line of the caller's."""
        if not self.disable:
            print(message, file=self._stream(), flush=True)

    def close(self) -> None:
        """Print the last line (when ``leave``, and the count changed since the last one)."""
        if self._closed:
            return
        self._closed = True
        if not self.disable and self.leave and self._printed_n != self.n:
            self._print(self._clock())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _stream(self):
        return sys.stderr if self._file is None else self._file

    def line(self, now: float | None = None) -> str:
        """The line that would be printed now."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        parts = [f"{count} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{_duration(elapsed)} elapsed")
        done = self.n - self.initial
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:.3g} {self.unit}/s")
            if self.total and self.n < self.total:
                parts.append(f"~{_duration((self.total - self.n) / rate)} left")
        parts += [f"{k}={v}" for k, v in self._postfix.items()]
        head = f"{self.desc}: " if self.desc else ""
        return head + ", ".join(parts)

    def _print(self, now: float) -> None:
        self._printed_n = self.n
        print(self.line(now), file=self._stream(), flush=True)
