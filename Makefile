# Entry points. `make run` starts the API on its embedded SQLite; `make test` installs what the
# suite needs (.ci/setup) and runs every test; `make run-cluster` starts a throwaway PostgreSQL and
# two replicas on it.
.PHONY: run run-cluster setup test test-suites test-plugins test-loader-arm size-budget size-budget-builds memory-budget bench fuzz darwin-check wine-prefix

CARGO ?= cargo
, := ,
# bash: the fuzz loop reads PIPESTATUS.
SHELL := /bin/bash

# The API with mig-api's defaults (127.0.0.1:1664, ./mig-api.db, created on first start) and the
# development freshness key that the development mig-loader requires (conf/api-dev.cfg; a mode-0600
# copy in ./mig-api-freshness.key, since git keeps no mode), and how to add the first
# administrator to that database.
RUN_API := $(abspath $(or $(CARGO_TARGET_DIR),target))/release/mig-api
run:
	$(CARGO) build --release -p api --bin mig-api
	@echo "mig-api's database: $(CURDIR)/mig-api.db (SQLite, created on first start); the URL it"
	@echo "  listens on (http://127.0.0.1:1664/api/v2/) is announced below: mig-api listening on URL."
	@echo "The first administrator, from another terminal in $(CURDIR), with an armored public key:"
	@echo "  gpg --armor --export alice@example.org > alice.asc"
	@echo "  $(RUN_API) investigator add --name alice --pubkey alice.asc --perms PermAdmin,PermManifest,PermLoader"
	install -m 600 conf/dev-keys/freshness.sec.asc mig-api-freshness.key
	$(RUN_API) --config conf/api-dev.cfg

# Two mig-api replicas (127.0.0.1:1664 and :1665) on a throwaway PostgreSQL cluster in a
# temporary directory, until Ctrl-C (api/run-cluster.sh).
run-cluster:
	$(CARGO) build --release -p api --bin mig-api
	bash api/run-cluster.sh $(or $(CARGO_TARGET_DIR),target)/release/mig-api

# Every test: unit, integration, GnuPG interop, console against a real API, end to end, the
# plugins' own tests, the API's suite again on PostgreSQL (a throwaway cluster), the loader's
# suite again with the arm64 build under qemu-aarch64-static, with the ARMv7 and ARMv6 builds
# under qemu-arm-static (the two at once: each waits on its emulated loader) and with the Windows
# build under wine (its unit tests too) and the Windows MSI installed under wine
# (loader-min/tests/windows_msi.rs); every target's release build within its size budget and the
# macOS universal binary (darwin-check); the memory budget; every fuzz target for
# TEST_FUZZ_SECONDS.
#
# The suites run test binaries that mostly wait (on loaders, servers, gpg, qemu, wine): they keep
# about one of CI's two cores busy. The release builds of every target (size-budget-builds) and
# the fuzz lane compile from the start beside them, at the lowest CPU priority (nice 19), so they
# take the core the suites leave idle and never slow a suite that runs a loader against a short
# deadline. Each background lane writes its own log (TEST_LANES), printed when it ends. The
# memory budget runs last, on an idle machine, from the release build the lane made.
TEST_FUZZ_SECONDS ?= 10
TEST_LANES := $(abspath $(or $(CARGO_TARGET_DIR),target))/test-lanes
WORKSPACE_BINS = $(CARGO) build --workspace --bins --all-features
test: test-plugins
	$(WORKSPACE_BINS)
	rm -rf $(TEST_LANES) && mkdir -p $(TEST_LANES)
	{ nice -n 19 $(MAKE) size-budget-builds WORKSPACE_BINS_BUILT=1 >$(TEST_LANES)/size-budget.log 2>&1; echo $$? >$(TEST_LANES)/size-budget.rc; } & \
	{ nice -n 19 $(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) >$(TEST_LANES)/fuzz.log 2>&1; echo $$? >$(TEST_LANES)/fuzz.rc; } & \
	$(MAKE) test-suites; suites=$$?; \
	wait; \
	for lane in size-budget fuzz; do echo "== $$lane lane (in the background; exit status $$(cat $(TEST_LANES)/$$lane.rc))"; cat $(TEST_LANES)/$$lane.log; done; \
	test $$suites = 0 && test "$$(cat $(TEST_LANES)/size-budget.rc)" = 0 && test "$$(cat $(TEST_LANES)/fuzz.rc)" = 0
	$(MAKE) memory-budget

test-suites:
	$(CARGO) test --workspace --all-features
	MIG_TEST_DATABASE=postgres $(CARGO) test -p api --tests --all-features
	$(CARGO) build -p loader-min --bin mig-loader --target aarch64-unknown-linux-musl
	MIG_TEST_LOADER_TARGET=aarch64-unknown-linux-musl $(CARGO) test -p loader-min --test loader
	$(MAKE) test-loader-arm
	$(CARGO) build -p loader-min --bin mig-loader -p stand-in-agent --bin stand-in-agent --target x86_64-pc-windows-gnu
	$(MAKE) wine-prefix
	WINEPREFIX=$(WINE_PREFIX) wineserver -p$(WINESERVER_LINGER)
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all $(CARGO) test -p loader-min --lib --target x86_64-pc-windows-gnu
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all MIG_TEST_LOADER_TARGET=x86_64-pc-windows-gnu $(CARGO) test -p loader-min --test loader
	WINEPREFIX=$(WINE_PREFIX) wineserver -k
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all MIG_TEST_LOADER_TARGET=x86_64-pc-windows-gnu $(CARGO) test -p loader-min --test windows_msi

# Every target's release mig-loader within its budgets (size-budget/README.md): every target's
# size and the macOS builds joined into one universal binary (size-budget-builds), and the memory
# budget (tests/tests/budget.rs, kept out of the workspace's tests by tests/Cargo.toml).
size-budget: size-budget-builds
	$(MAKE) memory-budget

memory-budget:
	$(CARGO) test --workspace --all-features --test budget

# The size-budget binary of the workspace's own build (WORKSPACE_BINS), not `cargo run -p
# size-budget`: alone, that package unifies other features into its dependencies (libc, pgp…) and
# cargo would compile them all again, 3 min 20 s on a cold CI beside the suites. `make test` has
# just made that build and says so (WORKSPACE_BINS_BUILT=1), so the lane does not wait on the
# suites' cargo lock to find nothing to do. cargo zigbuild reads MACOSX_DEPLOYMENT_TARGET itself,
# before cargo's [env] is applied (without it the macOS builds ask for macOS 13).
size-budget-builds:
	$(if $(WORKSPACE_BINS_BUILT),,$(WORKSPACE_BINS))
	MACOSX_DEPLOYMENT_TARGET=$(MACOS_MIN) $(abspath $(or $(CARGO_TARGET_DIR),target))/debug/size-budget
	$(MAKE) darwin-check

# The suite runs debug builds (its crash injection is debug-only, loader-min/src/crash.rs), here
# without debuginfo and at opt-level 1 with debug assertions kept (these flags reach only the ARM
# crates, std included): an unoptimised 38 MB ARM build under qemu cannot fetch its own
# replacement within the development configuration's 5 s request deadline
# (loader_replaces_itself). RUSTFLAGS replaces the target's rustflags of .cargo/config.toml, so it
# repeats them.
ARM_TRIPLES = $(LOADER_TRIPLE_linux_arm7) $(LOADER_TRIPLE_linux_arm6)
ARM_TEST_RUSTFLAGS := -C link-self-contained=no -C debuginfo=0 -C opt-level=1 -C debug-assertions=on
test-loader-arm:
	for t in $(ARM_TRIPLES); do \
	  RUSTFLAGS="$(ARM_TEST_RUSTFLAGS)" $(LOADER_CARGO_zig-std) -p loader-min --bin mig-loader --target $$t || exit 1; \
	done
	$(CARGO) test -p loader-min --test loader --no-run
	log=$$(mktemp -d); pids=; \
	for t in $(ARM_TRIPLES); do \
	  MIG_TEST_LOADER_TARGET=$$t $(CARGO) test -p loader-min --test loader >$$log/$$t 2>&1 & pids="$$pids $$!"; \
	done; \
	ok=0; for p in $$pids; do wait $$p || ok=1; done; \
	for t in $(ARM_TRIPLES); do echo "== loader suite, $$t under qemu-arm-static"; cat $$log/$$t; done; \
	rm -rf $$log; exit $$ok

# A throwaway wine prefix for the Windows build's tests (.cargo/config.toml runs Windows test
# binaries under wine). Wine 8.0 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard
# library imports on Windows 10 and later: tests/wine/bcryptprimitives.c stands in for it.
WINE_PREFIX ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/wine-prefix
# One wineserver serves every Windows process of the suite and stays up this many seconds after the
# last one exits. Left to itself it exits 3 s after its last client, and the suite's runs are
# often further apart (a test signs with gpg between two runs). One run in CI exited 1 with no
# output at all (a_sha1_signature_does_not_count_toward_the_threshold; not reproduced in 5 runs of
# the suite here): a process that starts while the server shuts down is the likeliest cause.
# After the suite it is stopped at once (wineserver -k): the MSI test waits for it to end before
# it starts its own.
WINESERVER_LINGER ?= 60
wine-prefix:
	rm -rf $(WINE_PREFIX)
	mkdir -p $(WINE_PREFIX)
	WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all wine wineboot --init
	WINEPREFIX=$(WINE_PREFIX) wineserver --wait
	x86_64-w64-mingw32-gcc -O2 -shared -s -o $(WINE_PREFIX)/drive_c/windows/system32/bcryptprimitives.dll tests/wine/bcryptprimitives.c -ladvapi32


# The system packages, toolchains and targets the suite uses (.ci/setup: as root it installs the
# missing ones; otherwise it names the command that does). The fuzz lane installs its own nightly
# and cargo-fuzz (`.ci/setup fuzz`), in the background of `make test` rather than before it.
setup:
	.ci/setup

test-plugins: setup
	@if [ -f plugins/Cargo.toml ]; then $(CARGO) test --manifest-path plugins/Cargo.toml; fi

# Every fuzz target of tests/fuzz for FUZZ_SECONDS each, from seeds the product's own code writes
# (on the nightly of tests/fuzz/rust-toolchain.toml with cargo-fuzz, which `.ci/setup fuzz`
# installs). A crash fails the run and leaves its input in tests/fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 30
FUZZ_DIR     := $(abspath $(or $(CARGO_TARGET_DIR),target))/fuzz
FUZZ_TARGETS := statement signature journal runtime_config ini admin_token wire_json expr archive loader_http mig_v1 freshness
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
#   make mig-loader LOADERCONF=conf/mig-loader-myenv.toml OS=windows    → bin/windows/amd64/mig-loader.exe
#   make deb-loader LOADERCONF=conf/mig-loader-myenv.toml [ARCH=arm64]  → dist/mig-loader_<version>_<ARCH>.deb
#   make mig-loader-universal LOADERCONF=conf/mig-loader-myenv.toml  → bin/darwin/universal/mig-loader
#   make msi-loader LOADERCONF=conf/mig-loader-myenv.toml  → dist/mig-loader-<version>.msi (Windows)
# OS and ARCH are Go's GOOS and GOARCH, as MIG names platforms: linux (default), darwin or windows;
# amd64 (default), arm64 (linux, darwin) or arm (linux). For arm, Go's GOARM picks the CPU: 7
# (default, ARMv7 hard float) or 6 (ARMv6, Raspberry Pi 1 and Zero) → bin/linux/armv7/ or
# bin/linux/armv6/, Debian armhf. These rows are the table of tests/support/src/targets.rs (its
# test the_makefile_arch_rows_are_this_table compares them); a LOADER_BUILD row names a target
# built with zig (targets.rs `Build`; .ci/setup installs zig and cargo-zigbuild): `zig` links
# Mach-O without Apple's SDK, `zig-std` also builds std from rust-src. The universal macOS binary
# joins both with llvm-lipo (Debian: llvm). Windows is linked by mingw-w64.
.PHONY: mig-loader deb-loader mig-loader-universal msi-loader

OS             ?= linux
ARCH           ?= amd64
LOADER_TRIPLE_linux_amd64 := x86_64-unknown-linux-musl
LOADER_TRIPLE_linux_arm64 := aarch64-unknown-linux-musl
LOADER_TRIPLE_darwin_arm64 := aarch64-apple-darwin
LOADER_TRIPLE_darwin_amd64 := x86_64-apple-darwin
LOADER_TRIPLE_linux_arm7 := armv7-unknown-linux-musleabihf
LOADER_TRIPLE_linux_arm6 := arm-unknown-linux-musleabihf
LOADER_TRIPLE_windows_amd64 := x86_64-pc-windows-gnu
DEB_ARCH_linux_amd64 := amd64
DEB_ARCH_linux_arm64 := arm64
DEB_ARCH_linux_arm7 := armhf
DEB_ARCH_linux_arm6 := armhf
LOADER_BUILD_darwin_arm64 := zig
LOADER_BUILD_darwin_amd64 := zig
LOADER_BUILD_linux_arm7 := zig-std
LOADER_BUILD_linux_arm6 := zig-std
GOARM          ?= 7
LOADER_ARM     := $(if $(filter arm,$(ARCH)),$(GOARM))
LOADER_KEY     := $(OS)_$(ARCH)$(LOADER_ARM)
LOADER_BIN     := bin/$(OS)/$(ARCH)$(if $(LOADER_ARM),v$(LOADER_ARM))
LOADER_TRIPLE  := $(LOADER_TRIPLE_$(LOADER_KEY))
DEB_ARCH       := $(DEB_ARCH_$(LOADER_KEY))
# tests/support/src/targets.rs `Build::cargo_build`.
# cargo zigbuild reads the oldest macOS to link for from its own environment, which the [env] of
# .cargo/config.toml (the one place that names it) does not reach when make starts it.
MACOS_MIN            := $(shell sed -n 's/^MACOSX_DEPLOYMENT_TARGET *= *"\(.*\)"/\1/p' .cargo/config.toml)
LOADER_CARGO_zig     := MACOSX_DEPLOYMENT_TARGET=$(MACOS_MIN) $(CARGO) zigbuild
LOADER_CARGO_zig-std := RUSTC_BOOTSTRAP=1 $(CARGO) zigbuild -Z build-std=std$(,)panic_abort
LOADER_CARGO   := $(or $(LOADER_CARGO_$(LOADER_BUILD_$(LOADER_KEY))),$(CARGO) build)
LIPO           := $(or $(shell command -v llvm-lipo),$(shell command -v llvm-lipo-14),llvm-lipo)
# Debian's armhf baseline is ARMv7: the ARMv6 package says what it is for and has its own name.
DEB_FILE       = dist/mig-loader_$(LOADER_VERSION)_$(DEB_ARCH)$(if $(filter 6,$(LOADER_ARM)),-armv6).deb
DEB_NOTE       = $(if $(filter 6,$(LOADER_ARM)), This build is for ARMv6 (Raspberry Pi 1 and Zero; it runs on ARMv7 too).)
LOADER_TARGET  := $(or $(CARGO_TARGET_DIR),target)
LOADER_EXE     := mig-loader$(if $(filter windows,$(OS)),.exe)
LOADER_VERSION ?= $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)-$(shell date -u +%Y%m%d).$(shell git rev-parse --short HEAD 2>/dev/null || echo local)
DEB_ROOT       := $(LOADER_TARGET)/deb-loader

mig-loader:
	@if [ -z "$(LOADERCONF)" ]; then echo "LOADERCONF is not set: copy conf/mig-loader.toml to conf/mig-loader-myenv.toml, edit it, then: make mig-loader LOADERCONF=conf/mig-loader-myenv.toml"; exit 1; fi
	@if [ ! -r "$(LOADERCONF)" ]; then echo "$(LOADERCONF) configuration file does not exist"; exit 1; fi
	@if [ -z "$(LOADER_TRIPLE)" ]; then echo "OS=$(OS) ARCH=$(ARCH) GOARM=$(GOARM) is not a mig-loader target: linux with amd64, arm64, or arm with GOARM 7 or 6; darwin with amd64 or arm64; windows with amd64 (Go's GOOS, GOARCH and GOARM)"; exit 1; fi
	mkdir -p $(LOADER_BIN)
	LOADERCONF="$(abspath $(LOADERCONF))" $(LOADER_CARGO) -p loader-min --bin mig-loader --profile loader --target $(LOADER_TRIPLE)
	cp $(LOADER_TARGET)/$(LOADER_TRIPLE)/loader/$(LOADER_EXE) $(LOADER_BIN)/$(LOADER_EXE)

# The macOS builds size-budget made (docs/design.md §2.7: they cannot run here) joined into a
# universal binary, and their Mach-O headers shown: both architectures, PIE executables, macOS
# 11, libSystem only. Each is printed by echo, not `tee /dev/stderr`: that reopens stderr and,
# where stderr is a file (make -O, a CI log), truncates it.
DARWIN_UNIVERSAL := $(LOADER_TARGET)/size-budget/mig-loader-universal-apple-darwin
darwin-check:
	mkdir -p $(dir $(DARWIN_UNIVERSAL))
	$(LIPO) -create -output $(DARWIN_UNIVERSAL) $(LOADER_TARGET)/aarch64-apple-darwin/loader/mig-loader $(LOADER_TARGET)/x86_64-apple-darwin/loader/mig-loader
	info=$$($(LIPO) -info $(DARWIN_UNIVERSAL)) && echo "$$info" && echo "$$info" | grep -q 'x86_64 arm64'
	kind=$$(file $(DARWIN_UNIVERSAL)) && echo "$$kind" && echo "$$kind" | grep -q 'Mach-O universal binary with 2 architectures'
	headers=$$(llvm-objdump --macho --private-headers --arch=all $(DARWIN_UNIVERSAL) \
	  | grep -E 'MH_MAGIC|cputype|^ +(platform|minos|name) ') && echo "$$headers" \
	  && test "$$(echo "$$headers" | grep -c 'EXECUTE.*PIE')" = 2

# One Mach-O for Apple silicon and Intel Macs.
mig-loader-universal:
	$(MAKE) mig-loader OS=darwin ARCH=arm64
	$(MAKE) mig-loader OS=darwin ARCH=amd64
	mkdir -p bin/darwin/universal
	$(LIPO) -create -output bin/darwin/universal/mig-loader bin/darwin/arm64/mig-loader bin/darwin/amd64/mig-loader

deb-loader: mig-loader
	rm -rf $(DEB_ROOT)
	install -D -m 0755 $(LOADER_BIN)/mig-loader $(DEB_ROOT)/sbin/mig-loader
	install -d -m 0755 $(DEB_ROOT)/etc/mig
	install -d -m 0700 $(DEB_ROOT)/var/lib/mig
	install -D -m 0644 conf/mig-loader.service $(DEB_ROOT)/lib/systemd/system/mig-loader.service
	install -D -m 0644 conf/mig-loader.timer $(DEB_ROOT)/lib/systemd/system/mig-loader.timer
	install -D -m 0644 packaging/deb/copyright $(DEB_ROOT)/usr/share/doc/mig-loader/copyright
	install -D -m 0644 loader-min/README.md $(DEB_ROOT)/usr/share/doc/mig-loader/README.md
	install -D -m 0644 conf/mig-loader.cron $(DEB_ROOT)/usr/share/doc/mig-loader/examples/mig-loader.cron
	install -d -m 0755 $(DEB_ROOT)/DEBIAN
	sed -e 's/@VERSION@/$(LOADER_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' -e 's/@NOTE@/$(DEB_NOTE)/' packaging/deb/control.in > $(DEB_ROOT)/DEBIAN/control
	echo "Installed-Size: $$(du -sk $(DEB_ROOT) | cut -f1)" >> $(DEB_ROOT)/DEBIAN/control
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm $(DEB_ROOT)/DEBIAN/
	mkdir -p dist
	dpkg-deb --root-owner-group --build $(DEB_ROOT) $(DEB_FILE)

# The Windows installer (docs/design.md §2.8): the Windows loader in an MSI built by wixl (Debian:
# wixl) from packaging/windows/mig-loader.wxs. msiexec /i dist/mig-loader-<version>.msi
# PIDKEY=<loader key> /qn installs C:\mig\mig-loader.exe, writes the key and starts the
# mig-loader service. An MSI's version is numeric: the workspace's, without the date and commit.
MSI_VERSION := $(shell sed -n 's/^version *= *"\([0-9]*\.[0-9]*\.[0-9]*\).*"/\1/p' Cargo.toml | head -n1)
msi-loader:
	$(MAKE) mig-loader OS=windows ARCH=amd64
	packaging/windows/build-msi.sh bin/windows/amd64/mig-loader.exe $(MSI_VERSION) dist/mig-loader-$(MSI_VERSION).msi
	msiinfo export dist/mig-loader-$(MSI_VERSION).msi ServiceInstall
