"""The contract: pydantic models of every hotline event, and the unit registry."""
