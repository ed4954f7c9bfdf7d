"""dlpipe benchmarks vs peers and this machine's limits. Run all: ``.venv/bin/python -m bench.run``."""
