"""Operator benchmarks: accuracy and threshold tuning, lookup speed, throughput."""
