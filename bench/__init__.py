"""GhostPanel benchmarks (not a test suite): see README.md."""
