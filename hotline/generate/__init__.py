"""Deterministic generator of a month of contract-v1 events that reproduces the seed bulletin.

The pipeline computes every figure of the monthly table from raw events, so the
only convincing end-to-end test is a stream whose aggregates are known in
advance. This package reads the seed table (``seed/*-units.csv``, :data:`hotline.seed.TABLE`) and headline
(``seed/*-headline.json``, :data:`hotline.seed.HEADLINE`) and plans, order by order and call by call, a
realistic history whose counts reproduce every cell exactly under the counting
rules of SPEC.md:

* November-cohort orders: one per 交办数 of the final unit, on time or overdue,
  237 of them first dispatched to (and returned by) another unit;
* October-cohort orders only where a November figure needs them: orders
  returned several times (the times-returned distribution), orders visited in
  November after an October completion (备注 2), and supervised orders (two
  unsatisfied visits: one in October, one in November);
* calls: received, answered, handled (valid / direct / ordered), with the
  category and type totals of the headline.

Everything is driven by one ``random.Random(seed)``, so the same seed yields
byte-identical output; records come in a plausible arrival order (keys
interleaved, each key's events in time order) with a few exact duplicates.

The modules, in the order :func:`generate` uses them:

* ``targets``: the seed table and headline as exact counts;
* ``calendar``: the month, office hours, working days, on-time and late completions;
* ``model``: the plans (orders, steps, calls) and the :class:`~hotline.generate.model.World` they share;
* ``categories``: the month's category totals and a plausible category per unit;
* ``orders``: every order history (November cohort, October carry-over, supervision, visits);
* ``calls``: every call of the month;
* ``emit``: ids, then the contract events of each order and call;
* ``checks``: section 二, the province's checks, from a generator of their own;
* ``arrival``: arrival order and duplicates;
* ``build``: :func:`generate`, the steps above end to end;
* ``jsonl``: the replay file ``hotline generate`` writes.
"""

from __future__ import annotations

from hotline.generate.build import generate
from hotline.generate.jsonl import route, write_jsonl

__all__ = ["generate", "route", "write_jsonl"]
