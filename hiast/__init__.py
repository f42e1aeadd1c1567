"""HIAST: hard-aware instance adaptive self-training for cross-domain semantic segmentation."""

__version__ = "0.1.0"
