"""The generator end to end: read the targets, plan orders and calls, emit events, order their arrival.

The order of the steps is part of the output: every step draws from the same
``random.Random(seed)``, so reordering them changes the month.
"""

from __future__ import annotations

import random
from importlib.resources.abc import Traversable

from hotline.generate.arrival import arrival_order
from hotline.generate.calendar import Month
from hotline.generate.calls import plan_calls
from hotline.generate.categories import category_targets
from hotline.generate.checks import check_sequences, load_checks
from hotline.generate.emit import assign_ids, sequences
from hotline.generate.model import Progress, World
from hotline.generate.orders import plan_orders
from hotline.generate.targets import load_table, load_targets
from hotline.schemas.office import Office, current_office
from hotline.schemas.registry import Registry, default_registry


def generate(
    table_csv: Traversable,
    headline_json: Traversable,
    seed: int = 2019,
    duplicate_share: float = 0.03,
    progress: Progress | None = None,
    registry: Registry | None = None,
    office: Office | None = None,
) -> list[bytes]:
    """Contract-v1 records (``dump_event`` output) in arrival order, duplicates included; the units
    are ``registry``'s and the districts ``office``'s ordered groups (the configured office's without)."""
    say: Progress = progress or (lambda _msg: None)
    registry = registry or default_registry()
    ordered = (office or current_office()).bulletin.ordered_groups
    rows = load_table(table_csv, registry)
    targets = load_targets(headline_json)
    if targets.direct + sum(r.dispatched for r in rows) != targets.valid:
        raise ValueError("direct answers + dispatched orders != valid calls")
    rng = random.Random(seed)
    districts = frozenset(u.id for u in registry.units if u.group in ordered)
    month = Month.of(targets.year, targets.month)
    world = World(rng, month, rows, targets, category_targets(targets), districts)
    plan_orders(world, say)
    plan_calls(world)
    assign_ids(world)
    say(f"planned {len(world.calls)} calls")
    checks = check_sequences(world, load_checks(headline_json, registry), seed)
    records = arrival_order(sequences(world), rng, duplicate_share, checks, random.Random(f"{seed}:arrivals"))
    say(f"generated {len(records)} records")
    return records
