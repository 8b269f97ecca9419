"""Test-data generators shared by tests and benchmarks (never imported by the package)."""
