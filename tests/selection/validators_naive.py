"""Naive references for the validator tests: loops and full matrices, slow, no code shared with selection."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

IGNORE = 255


def entropy_row(p) -> float:
    return -sum(float(x) * math.log(float(x)) for x in p if x > 0)


def naive_information(probs: np.ndarray) -> dict[str, float]:
    rows = np.asarray(probs, dtype=np.float64).reshape(-1, probs.shape[-1])
    n, c = rows.shape
    ent = [entropy_row(r) for r in rows]
    mean_p = [sum(rows[i, k] for i in range(n)) / n for k in range(c)]
    return {
        "entropy": sum(ent) / n,
        "confidence": sum(max(r) for r in rows) / n,
        "im": entropy_row(mean_p) - sum(ent) / n,
        "bnm": float(np.linalg.norm(rows, "nuc")) / n,
    }


def naive_snd_image(probs: np.ndarray, temperature: float) -> list[float]:
    """Per-row entropies, as pytorch-adapt's test does it: full matrix, diagonal removed."""
    x = np.asarray(probs, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = x.shape[0]
    out = []
    for i in range(n):
        sims = [float(x[i] @ x[j]) / temperature for j in range(n) if j != i]
        m = max(sims)
        w = [math.exp(s - m) for s in sims]
        z = sum(w)
        out.append(entropy_row([v / z for v in w]))
    return out


def naive_snd(probs: np.ndarray, temperature: float) -> float:
    ents = [e for image in probs for e in naive_snd_image(image, temperature)]
    return sum(ents) / len(ents)


def miou_against(pred, ref, num_classes: int) -> float:
    """mIoU of labels ``pred`` against ``ref`` over the listed pixels (classes with a union)."""
    ious = []
    for c in range(num_classes):
        inter = sum(1 for a, b in zip(pred, ref, strict=True) if a == c and b == c)
        union = sum(1 for a, b in zip(pred, ref, strict=True) if a == c or b == c)
        if union:
            ious.append(inter / union)
    return sum(ious) / len(ious) if ious else float("nan")


def naive_ensv(probs: np.ndarray) -> list[float]:
    """probs (n, N, C): ensemble = argmax of the summed probabilities, first index on ties."""
    n, npix, c = probs.shape
    ensemble, labels = [], [[] for _ in range(n)]
    for i in range(npix):
        sums = [sum(float(probs[j, i, k]) for j in range(n)) for k in range(c)]
        ensemble.append(sums.index(max(sums)))
        for j in range(n):
            row = [float(v) for v in probs[j, i]]
            labels[j].append(row.index(max(row)))
    return [miou_against(labels[j], ensemble, c) for j in range(n)]


def naive_vote_pixel(votes, ignore: int = IGNORE) -> int:
    counts = Counter(v for v in votes if v != ignore)
    if not counts:
        return ignore
    top = max(counts.values())
    winners = [c for c, k in counts.items() if k == top]
    return winners[0] if len(winners) == 1 else ignore


def naive_scored_against_vote(stacks, j: int, voters, num_classes: int, ignore: int = IGNORE) -> float:
    """F-mIoU of candidate j against the hard vote of ``voters`` (j's abstentions count as misses)."""
    inter = [0] * num_classes
    union = [0] * num_classes
    for stack in stacks:
        flat = stack.reshape(stack.shape[0], -1)
        for p in range(flat.shape[1]):
            fused = naive_vote_pixel([int(flat[v, p]) for v in voters], ignore)
            if fused == ignore:
                continue
            mine = int(flat[j, p])
            for c in range(num_classes):
                inter[c] += mine == c and fused == c
                union[c] += mine == c or fused == c
    ious = [inter[c] / union[c] for c in range(num_classes) if union[c]]
    return sum(ious) / len(ious) if ious else float("nan")


def naive_pair_miou(stacks, a: int, b: int, num_classes: int) -> float:
    inter = [0] * num_classes
    union = [0] * num_classes
    for stack in stacks:
        for x, y in zip(stack[a].reshape(-1), stack[b].reshape(-1), strict=True):
            for c in range(num_classes):
                inter[c] += x == c and y == c
                union[c] += x == c or y == c
    ious = [inter[c] / union[c] for c in range(num_classes) if union[c]]
    return sum(ious) / len(ious) if ious else float("nan")


def naive_mixval_counts(a, b, m, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    out = np.zeros((2, num_classes, 2), np.int64)
    for x, y, z in zip(np.ravel(a), np.ravel(b), np.ravel(m), strict=True):
        if x == ignore or y == ignore:
            continue
        probe = 0 if x != y else 1
        out[probe, x, 0] += 1
        out[probe, x, 1] += int(z == x)
    return out


def naive_atc_threshold(scores, correct):
    """Brute force over every candidate threshold t and share q: the (t, q) whose count matches."""
    k = sum(bool(c) for c in correct)
    if k == 0:
        return math.inf, 0.0
    for t in sorted(set(float(s) for s in scores), reverse=True):
        above = sum(1 for s in scores if s > t)
        tied = sum(1 for s in scores if s == t)
        if above < k <= above + tied:
            return t, (k - above) / tied
    raise AssertionError("unreachable")


def naive_atc_per_class(target, source, labels, score, ignore: int = IGNORE) -> list[float]:
    def conf(row):
        return -entropy_row(row) if score == "neg_entropy" else max(row)

    def argmax(row):
        row = [float(v) for v in row]
        return row.index(max(row))

    c = target.shape[-1]
    src = [
        (argmax(r), conf(r), int(y)) for r, y in zip(source.reshape(-1, c), labels.reshape(-1), strict=True)
    ]
    src = [s for s in src if s[2] != ignore]
    tgt = [(argmax(r), conf(r)) for r in target.reshape(-1, c)]
    pooled = naive_atc_threshold([s for _, s, _ in src], [p == y for p, _, y in src])
    tp, pred = [0.0] * c, [0] * c
    for k in range(c):
        mine = [(s, p == y) for p, s, y in src if p == k]
        t, q = naive_atc_threshold([s for s, _ in mine], [ok for _, ok in mine]) if mine else pooled
        scores = [s for p, s in tgt if p == k]
        pred[k] = len(scores)
        tp[k] = sum(1 for s in scores if s > t) + q * sum(1 for s in scores if s == t)
    wrong = [[0] * c for _ in range(c)]
    for p, _, y in src:
        if p != y:
            wrong[p][y] += 1
    pooled_wrong = [sum(wrong[k][y] for k in range(c)) for y in range(c)]
    missed = [0.0] * c
    for k in range(c):
        row = wrong[k] if sum(wrong[k]) else [0 if y == k else pooled_wrong[y] for y in range(c)]
        if sum(row):
            for y in range(c):
                missed[y] += (pred[k] - tp[k]) * row[y] / sum(row)
    out = []
    for k in range(c):
        union = pred[k] + missed[k]
        out.append(tp[k] / union if union > 0 else float("nan"))
    return out
