"""Production monitoring, a room of its own above the history store: ``watch.monitor`` wraps a loaded model and
records a sampled share of its calls; ``drift.report`` compares a recent window of them with a baseline."""
