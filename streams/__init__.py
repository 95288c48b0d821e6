"""Faust app and agents: events in, per-order state, per-unit counters, store batches out."""
