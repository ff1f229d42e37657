# An index of scripts/: each target is one script, readable on its own.
.PHONY: install run test lint bench soak

install:
	@bash scripts/install

run:
	@bash scripts/run

test:
	@bash scripts/test

lint:
	@bash scripts/lint

bench:
	@bash scripts/bench

soak:
	@bash scripts/soak
