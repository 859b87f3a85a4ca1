"""MedGRPO reward functions: task registry, parsers, metrics, similarity, judge, normalization."""
