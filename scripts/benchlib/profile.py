"""Where the proxy spends its time: py-spy's collapsed stacks reduced to top functions.

``py-spy record --format raw`` writes one line per distinct stack,
``frame;frame;…;leaf count``. Self time is the leaf's share of samples; inclusive time
counts a function once per stack it appears in (recursion is not double counted).
uvloop is C: time in its loop and in syscalls it makes shows as self time of the
Python frame that entered it (``Runner.run``), so that line is "in the event loop".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    samples: int
    self_counts: Counter[str]
    inclusive_counts: Counter[str]

    def top(self, n: int, inclusive: bool = False) -> list[tuple[str, float]]:
        """The ``n`` heaviest functions with their percentage of all samples."""
        counts = self.inclusive_counts if inclusive else self.self_counts
        total = self.samples or 1
        return [(name, 100.0 * c / total) for name, c in counts.most_common(n)]


def parse_collapsed(text: str) -> Profile:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        # --subprocesses puts a "process <pid>:<argv>" label at the root: not a function.
        frames = [f.strip() for f in stack.split(";") if f.strip() and not f.startswith("process ")]
        if not frames:
            continue
        samples += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return Profile(samples, self_counts, inclusive)


def by_file(profile: Profile) -> Counter[str]:
    """Self samples per source file (``h11/_util.py``, ``asyncio/streams.py``, ...)."""
    out: Counter[str] = Counter()
    for frame, count in profile.self_counts.items():
        _, _, where = frame.rpartition(" (")
        out[where.rstrip(")") or frame] += count
    return out


def render(title: str, profile: Profile, n: int = 15) -> str:
    total = profile.samples or 1
    lines = [f"{title}: {profile.samples} samples", "  self%  function (file)"]
    lines += [f"  {pct:5.1f}  {name}" for name, pct in profile.top(n)]
    lines.append("  self%  file")
    lines += [f"  {100.0 * c / total:5.1f}  {f}" for f, c in by_file(profile).most_common(n)]
    # The entry chain (runpy, main, run_proxy, ...) is in every full stack: skip it.
    inclusive = profile.top(n + 12, inclusive=True)
    root = inclusive[0][1] if inclusive else 0.0
    lines.append("  incl%  function (file), below the entry chain")
    lines += [f"  {pct:5.1f}  {name}" for name, pct in inclusive if pct < root][:n]
    return "\n".join(lines)
