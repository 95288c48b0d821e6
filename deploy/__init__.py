"""Local runtime launchers (single-node Kafka from Maven Central jars)."""
