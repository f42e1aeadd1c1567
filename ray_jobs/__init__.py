"""Ray orchestration of the label-free selection: thin, and the only package that imports Ray.

``select`` (entry point) -> ``cluster`` (join or start Ray), ``resources`` (check and size the
layout), ``train_loop`` (warm-up task; Tune trial = Train driver; per-worker loop calling
``hiast.pipeline``), ``tune_grid`` (the Tuner), ``vote_actor`` (the vote through ``selection``),
``storage`` (experiment layout), ``tensorboard_hparams`` and ``mlflow_results`` (results where
users already look). The dashboard is a view of selection results: :mod:`selection.report`.
"""
