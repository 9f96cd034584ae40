# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap what they need.
.PHONY: venv system-deps test check demo bench clean

venv:
	@scripts/bootstrap

system-deps:
	@scripts/system-deps

test: venv system-deps
	scripts/check
	scripts/test

check: venv
	scripts/check

demo: venv
	.venv/bin/vend demo

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
