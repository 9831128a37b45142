"""Benchmarks of the relay against the fakes on loopback; each module is runnable on its own."""
