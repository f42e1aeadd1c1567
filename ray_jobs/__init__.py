"""Ray orchestration of the label-free selection: thin, and the only package that imports Ray.

By Ray role, each subpackage with a small public face in its ``__init__``:

* ``select`` (module): the job's entry point, ``python -m ray_jobs.select`` / ``hiast-select``.
* ``preflight``: the checks before Ray starts, ``--plan`` and its step times, the source hold-out.
* ``cluster``: join or start Ray, the resources of each trial, leaked placement groups.
* ``search``: the Tune side: trial grid and Tuner, the function trainable (the driver of one
  candidate's Train run), the early-stop rung scheduler.
* ``worker``: the Ray Train loop of one candidate and the warm-up task (calling ``hiast.pipeline``).
* ``vote``: the vote actor (the vote through ``selection``; the only writer of the outputs).
* ``callbacks``: the job's Tune callbacks (console progress, provisional votes, MLflow).
* ``console``: log levels per verbosity and what the console says.
* ``tracking``: results where users already look (MLflow, TensorBoard HParams).

Shared by the roles: ``storage`` (experiment layout in local or remote storage), ``records`` (the
job records, one owner each), ``candidate_outputs`` (a finished candidate's label maps and
evidence; no Ray) and ``ray_compat``, the one module that touches Ray's private APIs. The
dashboard is a view of selection results: :mod:`selection.report`.
"""
