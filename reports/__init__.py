"""The month-end bulletin (通报): figures queried from ClickHouse, rendered for publication."""
