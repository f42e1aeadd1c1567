"""Compact per-candidate statistics on the selection subset: one ``.npz`` file per candidate.

What the label-free validators need beyond the label maps (:mod:`selection.store`), small enough
to keep for every candidate (format ``hiast-select/evidence/v2``):

===================  ===================  ==========================================================
array                dtype, shape         content
===================  ===================  ==========================================================
``target_probs``     float16 (n, P, C)    softmax at P sampled pixels of each subset image
``target_shapes``    int32 (n, 2)         (H, W) the pixels were sampled from
``snd_entropy``      float64 (n,)         per image, the sum over its P pixels of the soft-
                                          neighbourhood entropy (SND, ``settings.snd_temperature``)
``source_probs``     float16 (m, P, C)    same on the labelled source-val split (if configured)
``source_labels``    uint8 (m, P)         source-val labels at those pixels (255 = ignore)
``source_shapes``    int32 (m, 2)
``mixval_partner``   int32 (n,)           subset position of the image mixed into image i
``mixval_counts``    int64 (n, 2, C, 2)   MixVal probe counts, see :mod:`selection.validators.mixval`
``meta``             uint8 (bytes)        UTF-8 JSON: format, candidate_id, num_classes, settings,
                                          image ids and hash, source ids, scalars
===================  ===================  ==========================================================

The pixels are :func:`sample_pixels` of each image (same for every candidate), so candidates
compare pixel by pixel. ``snd_entropy`` is computed when the file is written, from the stored
(float16) probabilities: SND's cost grows with P^2 per image (the rest is linear), so it is paid
once, by the candidate's own worker, not at every vote. So is DEV's domain classifier
(:mod:`selection.validators.dev`): its results are scalars of the file (``dev``, ``iwcv``,
``dev_eta``), beside ``source_val_miou``.

Storage: 500 images at 1024x2048, P = 1000, C = 19 take 500 * 1000 * 19 * 2 B = 19 MB of target
probabilities per candidate (+ the same per 500 source-val images); full probability maps would
be 500 * 1024 * 2048 * 19 * 2 B = 40 GB.

The validator settings (:class:`EvidenceSettings`: pixel count and seed, MixVal weight and seed,
SND temperature, source-val image cap) are recorded in the file; reading with other expected
settings, another subset, class count or candidate raises :class:`EvidenceError` naming the file.
Files are written whole through :func:`selection.filesystem.write_bytes_atomic` (local paths or
``pyarrow.fs`` URIs). Modules: :mod:`.settings`, :mod:`.writer`, :mod:`.reader`; the pixel
sampling and MixVal pairing live in :mod:`selection.validators.evidence.sampling`.
"""

from selection.validators.evidence.reader import Evidence, check_same_sampling, read_evidence
from selection.validators.evidence.sampling import mixval_pairs, pixel_sampler, sample_pixels
from selection.validators.evidence.settings import (
    EVIDENCE_FORMAT,
    MIXVAL_PROBES,
    EvidenceError,
    EvidenceSettings,
)
from selection.validators.evidence.writer import EvidenceWriter

__all__ = [
    "EVIDENCE_FORMAT",
    "MIXVAL_PROBES",
    "EvidenceError",
    "EvidenceSettings",
    "EvidenceWriter",
    "Evidence",
    "read_evidence",
    "check_same_sampling",
    "sample_pixels",
    "pixel_sampler",
    "mixval_pairs",
]
