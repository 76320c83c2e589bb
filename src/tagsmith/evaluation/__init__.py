"""Evaluation harness: gold datasets -> predictions -> metrics -> reports.

Driven by `tagsmith eval`; the library lives here so an installed tagsmith can run it,
and `eval/` at the top of the repository holds run configurations and benchmarks.
"""
