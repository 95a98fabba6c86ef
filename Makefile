# Entry points. `make run` starts the API on its embedded SQLite; `make test` runs every test;
# `make run-cluster` starts a throwaway PostgreSQL and two replicas on it.
.PHONY: run run-cluster test test-plugins size-budget bench fuzz wine-prefix

CARGO ?= cargo
# bash: the fuzz loop reads PIPESTATUS.
SHELL := /bin/bash

# The API on 127.0.0.1:1664 with ./mig-api.db (created on first start).
run:
	$(CARGO) run --release -p api --bin mig-api

# Two mig-api replicas (127.0.0.1:1664 and :1665) on a throwaway PostgreSQL cluster in a
# temporary directory, until Ctrl-C (api/run-cluster.sh).
run-cluster:
	$(CARGO) build --release -p api --bin mig-api
	bash api/run-cluster.sh $(or $(CARGO_TARGET_DIR),target)/release/mig-api

# Every test: unit, integration, GnuPG interop, console against a real API, end to end, the
# plugins' own tests, the API's suite again on PostgreSQL (a throwaway cluster), the loader's
# suite again with the arm64 build under qemu-aarch64-static and with the Windows build under wine
# (its unit tests too), and the loader's size and memory budget.
test: test-plugins
	$(CARGO) build --workspace --bins --all-features
	$(CARGO) test --workspace --all-features
	MIG_TEST_DATABASE=postgres $(CARGO) test -p api --tests
	$(CARGO) build -p loader-min --bin mig-loader --target aarch64-unknown-linux-musl
	MIG_TEST_LOADER_TARGET=aarch64-unknown-linux-musl $(CARGO) test -p loader-min --test loader
	$(CARGO) build -p loader-min --bin mig-loader -p stand-in-agent --bin stand-in-agent --target x86_64-pc-windows-gnu
	$(MAKE) wine-prefix
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all $(CARGO) test -p loader-min --lib --target x86_64-pc-windows-gnu
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all MIG_TEST_LOADER_TARGET=x86_64-pc-windows-gnu $(CARGO) test -p loader-min --test loader
	$(CARGO) run -p size-budget

# A throwaway wine prefix for the Windows build's tests (.cargo/config.toml runs Windows test
# binaries under wine). Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard
# library imports on Windows 10 and later: tests/wine/bcryptprimitives.c stands in for it.
WINE_PREFIX ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/wine-prefix
wine-prefix:
	rm -rf $(WINE_PREFIX)
	mkdir -p $(WINE_PREFIX)
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all wine wineboot --init
	WINEPREFIX=$(WINE_PREFIX) wineserver --wait
	x86_64-w64-mingw32-gcc -O2 -shared -s -o $(WINE_PREFIX)/drive_c/windows/system32/bcryptprimitives.dll tests/wine/bcryptprimitives.c -ladvapi32

test-plugins:
	@if [ -f plugins/Cargo.toml ]; then $(CARGO) test --manifest-path plugins/Cargo.toml; fi

# Every fuzz target of tests/fuzz for FUZZ_SECONDS each, from seeds the product's own code writes
# (needs the nightly of tests/fuzz/rust-toolchain.toml and `cargo install cargo-fuzz`). A crash
# fails the run and leaves its input in tests/fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(abspath $(or $(CARGO_TARGET_DIR),target))/fuzz
FUZZ_TARGETS := statement signature journal runtime_config ini admin_token wire_json expr archive loader_http mig_v1
fuzz:
	cd tests/fuzz && CARGO_TARGET_DIR=$(FUZZ_DIR) cargo fuzz build --fuzz-dir .
	$(FUZZ_DIR)/x86_64-unknown-linux-gnu/release/seeds
	cd tests/fuzz && for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  CARGO_TARGET_DIR=$(FUZZ_DIR) cargo fuzz run --fuzz-dir . $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|Done|SUMMARY|==[0-9]+== ERROR)|panicked|Test unit written'; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done


# ---- mig-loader for endpoints (docs/design.md §2.2). A built-in configuration is required:
#   make mig-loader LOADERCONF=conf/mig-loader-myenv.toml [ARCH=arm64]  → bin/linux/<ARCH>/mig-loader
#   make mig-loader LOADERCONF=conf/mig-loader-myenv.toml OS=windows    → bin/windows/amd64/mig-loader.exe
#   make deb-loader LOADERCONF=conf/mig-loader-myenv.toml [ARCH=arm64]  → dist/mig-loader_<version>_<ARCH>.deb
# OS and ARCH are Go's GOOS and GOARCH, as MIG names platforms: linux (default) or windows; amd64
# (default) or arm64 (linux only). These rows are the table of tests/support/src/targets.rs (its test
# the_makefile_arch_rows_are_this_table compares them).
.PHONY: mig-loader deb-loader

OS             ?= linux
ARCH           ?= amd64
LOADER_TRIPLE_linux_amd64 := x86_64-unknown-linux-musl
LOADER_TRIPLE_linux_arm64 := aarch64-unknown-linux-musl
LOADER_TRIPLE_windows_amd64 := x86_64-pc-windows-gnu
DEB_ARCH_linux_amd64 := amd64
DEB_ARCH_linux_arm64 := arm64
LOADER_TRIPLE  := $(LOADER_TRIPLE_$(OS)_$(ARCH))
DEB_ARCH       := $(DEB_ARCH_$(OS)_$(ARCH))
LOADER_TARGET  := $(or $(CARGO_TARGET_DIR),target)
LOADER_EXE     := mig-loader$(if $(filter windows,$(OS)),.exe)
LOADER_VERSION ?= $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)-$(shell date -u +%Y%m%d).$(shell git rev-parse --short HEAD 2>/dev/null || echo local)
DEB_ROOT       := $(LOADER_TARGET)/deb-loader

mig-loader:
	@if [ -z "$(LOADERCONF)" ]; then echo "LOADERCONF is not set: copy conf/mig-loader.toml to conf/mig-loader-myenv.toml, edit it, then: make mig-loader LOADERCONF=conf/mig-loader-myenv.toml"; exit 1; fi
	@if [ ! -r "$(LOADERCONF)" ]; then echo "$(LOADERCONF) configuration file does not exist"; exit 1; fi
	@if [ -z "$(LOADER_TRIPLE)" ]; then echo "OS=$(OS) ARCH=$(ARCH) is not a mig-loader target: linux with amd64 or arm64, windows with amd64 (Go's GOOS and GOARCH)"; exit 1; fi
	mkdir -p bin/$(OS)/$(ARCH)
	LOADERCONF="$(abspath $(LOADERCONF))" $(CARGO) build -p loader-min --bin mig-loader --profile loader --target $(LOADER_TRIPLE)
	cp $(LOADER_TARGET)/$(LOADER_TRIPLE)/loader/$(LOADER_EXE) bin/$(OS)/$(ARCH)/$(LOADER_EXE)

deb-loader: mig-loader
	rm -rf $(DEB_ROOT)
	install -D -m 0755 bin/$(OS)/$(ARCH)/mig-loader $(DEB_ROOT)/sbin/mig-loader
	install -d -m 0755 $(DEB_ROOT)/etc/mig
	install -d -m 0700 $(DEB_ROOT)/var/lib/mig
	install -D -m 0644 conf/mig-loader.service $(DEB_ROOT)/lib/systemd/system/mig-loader.service
	install -D -m 0644 conf/mig-loader.timer $(DEB_ROOT)/lib/systemd/system/mig-loader.timer
	install -D -m 0644 packaging/deb/copyright $(DEB_ROOT)/usr/share/doc/mig-loader/copyright
	install -D -m 0644 loader-min/README.md $(DEB_ROOT)/usr/share/doc/mig-loader/README.md
	install -D -m 0644 conf/mig-loader.cron $(DEB_ROOT)/usr/share/doc/mig-loader/examples/mig-loader.cron
	install -d -m 0755 $(DEB_ROOT)/DEBIAN
	sed -e 's/@VERSION@/$(LOADER_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' packaging/deb/control.in > $(DEB_ROOT)/DEBIAN/control
	echo "Installed-Size: $$(du -sk $(DEB_ROOT) | cut -f1)" >> $(DEB_ROOT)/DEBIAN/control
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm $(DEB_ROOT)/DEBIAN/
	mkdir -p dist
	dpkg-deb --root-owner-group --build $(DEB_ROOT) dist/mig-loader_$(LOADER_VERSION)_$(DEB_ARCH).deb
