"""The torch back-end of the vote and the agreement: the same counts, written for CUDA (runs on CPU too).

Few full passes over small dtypes, because on a GPU memory traffic is the cost. Every function takes
the (n, P) uint8 pixel tensor of :func:`selection.fusion.arrays.as_pixels`. torch is imported inside the
functions, so importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["BINS_PER_CALL", "vote", "counts", "pair_intersections", "label_histogram"]

# Histogram bins one torch.bincount call may use and still fit CUDA shared memory (48 KB of int64):
# above that, bincount falls back to global atomics, which serialise on the hot diagonal bins.
BINS_PER_CALL = 6000


def vote(v: Any, ignore_index: int) -> Any:
    """Sort each pixel's votes; the longest run of equal valid labels wins, unless two runs tie.

    ``runs[i]`` counts how far the run of equal values ending at sorted position i reaches, so a run
    of length L hits the value ``top`` exactly once when L == top: the number of hits is the number
    of classes sharing the most votes. Ignore sorts last and is masked out.
    """
    import torch

    nv = v.shape[0]
    s = torch.sort(v, dim=0).values
    runs = torch.ones_like(s)
    for i in range(1, nv):
        torch.mul(runs[i - 1], s[i] == s[i - 1], out=runs[i])
        runs[i].add_(1)
    valid = s != ignore_index
    runs.mul_(valid)
    top = runs.amax(dim=0)
    at = (runs == top) & valid
    label = (s * at).amax(dim=0)
    return torch.where(at.sum(dim=0) == 1, label, torch.full_like(label, ignore_index))


def counts(p: Any, fused: Any, num_classes: int, ignore_index: int) -> tuple[Any, int | None]:
    """The counts of :func:`selection.fusion.numpy_backend.counts`, in few full passes over small dtypes."""
    import torch

    n = p.shape[0]
    c = num_classes
    k = c + 1
    per = k * k
    chunk = max(1, BINS_PER_CALL // per)
    code_dtype = torch.int16 if chunk * per <= 32767 else torch.int32
    col = torch.clamp(p, max=c)  # uint8; ignore and any invalid label land in column C
    fk = torch.clamp(fused, max=c).to(code_dtype) * k
    parts = []
    for j0 in range(0, n, chunk):
        j1 = min(n, j0 + chunk)
        off = (torch.arange(j1 - j0, device=p.device, dtype=code_dtype) * per)[:, None]
        parts.append(torch.bincount((col[j0:j1] + (fk + off)).reshape(-1), minlength=(j1 - j0) * per))
    out = torch.cat(parts).reshape(n, k, k)
    # Column C holds ignore and invalid labels alike: every one of them must be the ignore index.
    bad = out[:, :, c].sum(dim=1) != (p == ignore_index).sum(dim=1)
    first_bad = int(bad.int().argmax()) if bool(bad.any()) else None
    return out, first_bad


def pair_intersections(p: Any, pairs: Sequence[tuple[int, int]], num_classes: int) -> Any:
    """(n_pairs, C): pixels where both candidates of a pair say class c."""
    import torch

    c = num_classes
    per = c + 1  # bin C collects "differ or not a class"
    chunk = max(1, BINS_PER_CALL // per)
    col = torch.clamp(p, max=c).to(torch.int32)
    out = []
    for q0 in range(0, len(pairs), chunk):
        sel = pairs[q0 : q0 + chunk]
        a = torch.tensor([x for x, _ in sel], device=p.device)
        b = torch.tensor([y for _, y in sel], device=p.device)
        shared = torch.where(p[a] == p[b], col[a], c)
        off = (torch.arange(len(sel), device=p.device, dtype=torch.int32) * per)[:, None]
        out.append(torch.bincount((shared + off).reshape(-1), minlength=len(sel) * per).reshape(-1, per))
    return torch.cat(out)[:, :c]


def label_histogram(p: Any, ignore_index: int) -> Any:
    """(n, 256) count of every uint8 value per candidate."""
    import torch

    n = p.shape[0]
    off = (torch.arange(n, device=p.device, dtype=torch.int32) * 256)[:, None]
    return torch.bincount((p.to(torch.int32) + off).reshape(-1), minlength=n * 256).reshape(n, 256)
