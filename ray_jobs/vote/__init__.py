"""The vote: one Ray actor that runs ``selection``'s vote over the finished candidates and is the
only writer of the experiment's tables, ``choice.json`` and dashboard; it also decides label-free
early stopping's cut at the rung (:mod:`ray_jobs.vote.actor`)."""

from ray_jobs.vote.actor import VoteActor, vote_actor_name

__all__ = ["VoteActor", "vote_actor_name"]
