"""The spark engine: the residual of a plan in Spark SQL over Spark Connect (docs/scale-out.md)."""
