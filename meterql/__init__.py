"""meterql: a federated SQL engine for usage-based billing."""
