"""Where the gateway's CPU goes: the event loop's Python stacks, sampled by ``SIGPROF``.

A thread that samples another thread's stack can only run when that thread
lets go of the GIL, which a busy event loop does at I/O: such a sampler sees
``select`` and ``write`` and never the Python work in between. So the
sampler is the interval timer instead: ``setitimer(ITIMER_PROF)`` makes the
kernel send ``SIGPROF`` after every :data:`DEFAULT_INTERVAL` of CPU time the
process uses (``setitimer(2)``), and CPython runs the Python handler in the
main thread between two bytecodes with the interrupted frame as its
argument (``signal`` module docs, "Execution of Python signal handlers").
That frame is whatever Python the loop was running; work inside a C call that
holds the GIL (``orjson.dumps``, say) is charged to the Python function that
made the call. No extra privileges are needed, unlike an external sampler
such as py-spy (ptrace), which can still be pointed at the gateway's pid.

Costs and limits: about 200 samples per CPU-second, each a walk of the stack
into a tuple of code objects and one dict increment (a few µs; the folding
into ``module:function`` text waits for :meth:`StackSampler.stop`), so a few
tenths of a percent of CPU, and nothing while no ``cpu`` profile runs. The
loop must run in the main thread, where Python signal handlers run. CPU that
other threads use also raises ``SIGPROF``; it is charged to whatever the loop
runs next. The handler is installed with ``SA_RESTART`` (``siginterrupt``)
so system calls in C extensions are resumed rather than failed with ``EINTR``.

Stacks are counted as "folded stacks", outermost call first
(``module:function;module:function``), the format flame-graph tools read
(flamegraph.pl, speedscope, inferno). ``GET /profile?reset=1&cpu=1`` starts a
sampler; the next ``GET /profile`` stops it and reports.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from rtctl.exceptions import RtctlError

__all__ = ["DEFAULT_INTERVAL", "SamplerUnavailable", "StackSampler", "hot_functions"]

DEFAULT_INTERVAL = 0.005  # seconds of CPU time: 200 samples per CPU-second
_MAX_DEPTH = 128

_Handler = Callable[[int, FrameType | None], Any] | int | None


class SamplerUnavailable(RtctlError):
    """CPU sampling cannot start here (not the main thread, or the timer is in use)."""


class StackSampler:
    """Count the main thread's stacks, one per :attr:`interval` of CPU time, until :meth:`stop`."""

    def __init__(self, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self.samples = 0
        # Stacks as tuples of code objects, innermost first: the handler neither formats
        # nor looks up names; modules are noted once per code object.
        self._stacks: dict[tuple[CodeType, ...], int] = {}
        self._modules: dict[CodeType, str] = {}
        self._previous: _Handler = None
        self._running = False

    def start(self) -> None:
        """Install the ``SIGPROF`` handler and start the timer; raise if that cannot be done."""
        if threading.current_thread() is not threading.main_thread():
            raise SamplerUnavailable("CPU sampling needs the event loop in the main thread "
                                     "(Python runs signal handlers only there)")
        if signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
            raise SamplerUnavailable("the profiling timer (ITIMER_PROF) is in use by "
                                     "another profiler")
        previous = signal.getsignal(signal.SIGPROF)
        if previous is None:
            raise SamplerUnavailable("SIGPROF has a handler installed outside Python")
        self._previous = previous
        signal.signal(signal.SIGPROF, self._sample)
        signal.siginterrupt(signal.SIGPROF, False)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        self._running = True

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        """The handler: one stack, counted. Kept to a loop over frames and a dict update."""
        codes: list[CodeType] = []
        modules = self._modules
        while frame is not None and len(codes) < _MAX_DEPTH:
            code = frame.f_code
            if code not in modules:
                modules[code] = frame.f_globals.get("__name__", "?")
            codes.append(code)
            frame = frame.f_back
        stack = tuple(codes)
        self._stacks[stack] = self._stacks.get(stack, 0) + 1
        self.samples += 1

    def stop(self) -> Counter[str]:
        """Stop the timer, put the previous handler back, and return the folded stacks."""
        if self._running:
            # The timer first: a SIGPROF raised after the old handler (often SIG_DFL,
            # which ends the process) is back would be fatal.
            signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
            signal.signal(signal.SIGPROF, self._previous)
            self._running = False
        modules = self._modules
        folded: Counter[str] = Counter()
        for stack, count in self._stacks.items():
            folded[";".join(f"{modules[code]}:{code.co_name}" for code in reversed(stack))] += count
        return folded


def hot_functions(stacks: Mapping[str, int], limit: int = 15) -> list[tuple[str, int, int]]:
    """``(function, self samples, total samples)``, the most self time first.

    Self samples are those where the function was running (the innermost
    entry); total samples are those where it was anywhere on the stack.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, count in stacks.items():
        names = stack.split(";")
        own[names[-1]] += count
        for name in set(names):
            total[name] += count
    return [(name, samples, total[name]) for name, samples in own.most_common(limit)]
