# Entry points. `make run` starts the API on its embedded SQLite; `make test` runs every test.
.PHONY: run test test-plugins size-budget bench

CARGO ?= cargo

# The API on 127.0.0.1:1664 with ./mig-api.db (created on first start).
run:
	$(CARGO) run --release -p api --bin mig-api

# Every test: unit, integration, GnuPG interop, console against a real API, end to end, the
# plugins' own tests, and the loader's size and memory budget.
test: test-plugins
	$(CARGO) build --workspace --bins --all-features
	$(CARGO) test --workspace --all-features
	$(CARGO) run -p size-budget

test-plugins:
	@if [ -f plugins/Cargo.toml ]; then $(CARGO) test --manifest-path plugins/Cargo.toml; fi

