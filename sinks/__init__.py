"""Storage: the store vocabulary, the ClickHouse tables and their migrations, the stores, and the store server."""
