"""Real test doubles for integration tests and benchmarks (servers on 127.0.0.1, no mocks)."""
