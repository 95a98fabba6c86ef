# Entry points. `make run` starts the API on its embedded SQLite; `make test` installs what the
# suite needs (.ci/setup) and runs every test; `make run-cluster` starts a throwaway PostgreSQL and
# two replicas on it.
.PHONY: run run-cluster setup test test-plugins size-budget bench fuzz darwin-check

CARGO ?= cargo
# bash: the fuzz loop reads PIPESTATUS.
SHELL := /bin/bash

# The API with mig-api's defaults (127.0.0.1:1664, ./mig-api.db, created on first start), and how
# to add the first administrator to that database.
RUN_API := $(abspath $(or $(CARGO_TARGET_DIR),target))/release/mig-api
run:
	$(CARGO) build --release -p api --bin mig-api
	@echo "mig-api's database: $(CURDIR)/mig-api.db (SQLite, created on first start); the URL it"
	@echo "  listens on (http://127.0.0.1:1664/api/v2/) is announced below: mig-api listening on URL."
	@echo "The first administrator, from another terminal in $(CURDIR), with an armored public key:"
	@echo "  gpg --armor --export alice@example.org > alice.asc"
	@echo "  $(RUN_API) investigator add --name alice --pubkey alice.asc --perms PermAdmin,PermManifest,PermLoader"
	$(RUN_API)

# Two mig-api replicas (127.0.0.1:1664 and :1665) on a throwaway PostgreSQL cluster in a
# temporary directory, until Ctrl-C (api/run-cluster.sh).
run-cluster:
	$(CARGO) build --release -p api --bin mig-api
	bash api/run-cluster.sh $(or $(CARGO_TARGET_DIR),target)/release/mig-api

# Every test: unit, integration, GnuPG interop, console against a real API, end to end, the
# plugins' own tests, the API's suite again on PostgreSQL (a throwaway cluster), the loader's
# suite again with the arm64 build under qemu-aarch64-static, the loader's size and memory
# budget (every target, the macOS ones too), and the macOS universal binary (darwin-check).
test: test-plugins
	$(CARGO) build --workspace --bins --all-features
	$(CARGO) test --workspace --all-features
	MIG_TEST_DATABASE=postgres $(CARGO) test -p api --tests
	$(CARGO) build -p loader-min --bin mig-loader --target aarch64-unknown-linux-musl
	MIG_TEST_LOADER_TARGET=aarch64-unknown-linux-musl $(CARGO) test -p loader-min --test loader
	$(CARGO) run -p size-budget
	$(MAKE) darwin-check

# The system packages, toolchains and targets the suite uses (.ci/setup: as root it installs the
# missing ones; otherwise it names the command that does).
setup:
	.ci/setup

test-plugins: setup
	@if [ -f plugins/Cargo.toml ]; then $(CARGO) test --manifest-path plugins/Cargo.toml; fi

# Every fuzz target of tests/fuzz for FUZZ_SECONDS each, from seeds the product's own code writes
# (on the nightly of tests/fuzz/rust-toolchain.toml with cargo-fuzz, which `.ci/setup fuzz`
# installs). A crash fails the run and leaves its input in tests/fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(abspath $(or $(CARGO_TARGET_DIR),target))/fuzz
FUZZ_TARGETS := statement signature journal runtime_config ini admin_token wire_json expr archive loader_http mig_v1
fuzz:
	.ci/setup fuzz
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
#   make mig-loader LOADERCONF=conf/mig-loader-myenv.toml [OS=darwin] [ARCH=arm64]  → bin/<OS>/<ARCH>/mig-loader
#   make deb-loader LOADERCONF=conf/mig-loader-myenv.toml [ARCH=arm64]  → dist/mig-loader_<version>_<ARCH>.deb
#   make mig-loader-universal LOADERCONF=conf/mig-loader-myenv.toml  → bin/darwin/universal/mig-loader
# OS and ARCH are Go's GOOS and GOARCH, as MIG names platforms: linux (default) or darwin; amd64
# (default) or arm64. These rows are the table of tests/support/src/targets.rs (its test
# the_makefile_arch_rows_are_this_table compares them). macOS builds are linked by zig
# (cargo-zigbuild, `pip install ziglang`: no Apple SDK needed); the universal binary joins both with
# llvm-lipo (Debian: llvm).
.PHONY: mig-loader deb-loader mig-loader-universal

OS             ?= linux
ARCH           ?= amd64
LOADER_TRIPLE_linux_amd64 := x86_64-unknown-linux-musl
LOADER_TRIPLE_linux_arm64 := aarch64-unknown-linux-musl
LOADER_TRIPLE_darwin_arm64 := aarch64-apple-darwin
LOADER_TRIPLE_darwin_amd64 := x86_64-apple-darwin
DEB_ARCH_linux_amd64 := amd64
DEB_ARCH_linux_arm64 := arm64
LOADER_CARGO_darwin_arm64 := zigbuild
LOADER_CARGO_darwin_amd64 := zigbuild
LOADER_TRIPLE  := $(LOADER_TRIPLE_$(OS)_$(ARCH))
DEB_ARCH       := $(DEB_ARCH_$(OS)_$(ARCH))
LOADER_CARGO   := $(or $(LOADER_CARGO_$(OS)_$(ARCH)),build)
LIPO           := $(or $(shell command -v llvm-lipo),$(shell command -v llvm-lipo-14),llvm-lipo)
LOADER_TARGET  := $(or $(CARGO_TARGET_DIR),target)
LOADER_VERSION ?= $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)-$(shell date -u +%Y%m%d).$(shell git rev-parse --short HEAD 2>/dev/null || echo local)
DEB_ROOT       := $(LOADER_TARGET)/deb-loader

mig-loader:
	@if [ -z "$(LOADERCONF)" ]; then echo "LOADERCONF is not set: copy conf/mig-loader.toml to conf/mig-loader-myenv.toml, edit it, then: make mig-loader LOADERCONF=conf/mig-loader-myenv.toml"; exit 1; fi
	@if [ ! -r "$(LOADERCONF)" ]; then echo "$(LOADERCONF) configuration file does not exist"; exit 1; fi
	@if [ -z "$(LOADER_TRIPLE)" ]; then echo "OS=$(OS) ARCH=$(ARCH) is not a mig-loader target: linux or darwin with amd64 or arm64 (Go's GOOS and GOARCH)"; exit 1; fi
	mkdir -p bin/$(OS)/$(ARCH)
	LOADERCONF="$(abspath $(LOADERCONF))" $(CARGO) $(LOADER_CARGO) -p loader-min --bin mig-loader --profile loader --target $(LOADER_TRIPLE)
	cp $(LOADER_TARGET)/$(LOADER_TRIPLE)/loader/mig-loader bin/$(OS)/$(ARCH)/mig-loader

# The macOS builds size-budget made (docs/design.md §2.7: they cannot run here) joined into a
# universal binary, and their Mach-O headers shown: both architectures, PIE executables, macOS
# 11, libSystem only.
DARWIN_UNIVERSAL := $(LOADER_TARGET)/size-budget/mig-loader-universal-apple-darwin
darwin-check:
	mkdir -p $(dir $(DARWIN_UNIVERSAL))
	$(LIPO) -create -output $(DARWIN_UNIVERSAL) $(LOADER_TARGET)/aarch64-apple-darwin/loader/mig-loader $(LOADER_TARGET)/x86_64-apple-darwin/loader/mig-loader
	$(LIPO) -info $(DARWIN_UNIVERSAL) | tee /dev/stderr | grep -q 'x86_64 arm64'
	file $(DARWIN_UNIVERSAL) | tee /dev/stderr | grep -q 'Mach-O universal binary with 2 architectures'
	llvm-objdump --macho --private-headers --arch=all $(DARWIN_UNIVERSAL) \
	  | grep -E 'MH_MAGIC|cputype|^ +(platform|minos|name) ' | tee /dev/stderr \
	  | grep -c 'EXECUTE.*PIE' | grep -qx 2

# One Mach-O for Apple silicon and Intel Macs.
mig-loader-universal:
	$(MAKE) mig-loader OS=darwin ARCH=arm64
	$(MAKE) mig-loader OS=darwin ARCH=amd64
	mkdir -p bin/darwin/universal
	$(LIPO) -create -output bin/darwin/universal/mig-loader bin/darwin/arm64/mig-loader bin/darwin/amd64/mig-loader

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
