"""Sustained runs: a bundle under load for minutes, with latency, CPU clock, temperature and throttling each second."""
