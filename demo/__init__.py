"""Runs the function locally against an in-process moto account (`make demo`)."""
