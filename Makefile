# Ferry — build, run and test.  `make help` lists the targets.
#
#   make deps              set up the machine (Debian 12; as root) — tools/deps.sh
#   make [image]           build/$(PLATFORM)/ferry.{elf,img}
#   make images            both platforms
#   make guests            guest artifacts into build/guests/ — tools/fetch-guest — and
#                          the Linux test initramfs (tools/mkinitramfs, tests/linux/init)
#   make partitions        the reference backend partition: build/partitions/ferry-backend.bin
#   make test-guests       the bare-metal test guests into build/guests-bin/<name>.bin
#   make guest-smoke       boot each test guest on plain QEMU (no Ferry; PL011 console)
#   make ferry-tool        the `ferry` CLI (check, pack): target/release/ferry
#   make test              deps, images, guests, partitions, test guests, ferry CLI, then host unit
#                          tests + QEMU scenarios
#   make run               boot $(RUN_SCENARIO) on QEMU interactively (Ctrl-A X quits)
#   make run-linux         Debian Linux in a partition, with a shell (docs/linux.md)
#   make disk              the disk scenarios' ext4 image, build/disks/linux-disk.img, for
#                          trying it by hand (docs/linux.md, "Disks")
#   make bench             benchmarks under QEMU -icount, run twice (docs/bench.md)
#   make coverage          line coverage of the host tests, per crate and for the EL2
#                          core (installs cargo-llvm-cov on first use)
#   make fuzz              coverage-guided fuzzing: each target for FUZZ_SECS seconds (default 30;
#                          installs nightly and cargo-fuzz on first use; docs/fuzzing.md)
#   make clippy | fmt | clean
#
# Variables: PLATFORM=qemu-virt|imx8mp-evk, RUN_SCENARIO=<name from tests/scenarios.toml>,
# RUN_TIMEOUT=<seconds> (default 600), TEST_ARGS=<extra ferry-test test args, e.g.
# --filter virt-panic>.

PLATFORMS := qemu-virt imx8mp-evk
PLATFORM ?= qemu-virt
ifeq ($(filter $(PLATFORM),$(PLATFORMS)),)
$(error PLATFORM=$(PLATFORM) is not one of: $(PLATFORMS))
endif

TARGET := aarch64-unknown-none-softfloat
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# One target directory per board: cargo does not re-copy a cached binary into
# release/ when only the features change, so a shared one can hand out the other
# board's image.
EL2_TARGET_DIR := $(TARGET_DIR)/el2-$(PLATFORM)
ELF := $(EL2_TARGET_DIR)/$(TARGET)/release/ferry-hypervisor
OUT := build/$(PLATFORM)
# Deferred (`=`): only evaluated by recipes that use them, so `make deps` needs no rustc.
HOST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
OBJCOPY = $(shell rustc --print sysroot)/lib/rustlib/$(HOST_TRIPLE)/bin/llvm-objcopy

RUN_SCENARIO_qemu-virt := linux-disk-interactive
RUN_SCENARIO_imx8mp-evk := imx8mp-evk
RUN_SCENARIO ?= $(RUN_SCENARIO_$(PLATFORM))
RUN_TIMEOUT ?= 600
export RUN_TIMEOUT
TEST_ARGS ?=

FERRY_TEST := $(CARGO) run --release -q -p ferry-test --

# Ferry's bare-metal partitions (devices/partition/README.md): the partition runtime and
# the reference virtio backend, a cargo workspace of their own.
PARTITIONS := ferry-backend
PARTITION_MANIFEST := devices/partition/Cargo.toml
PARTITION_ELF_DIR := $(or $(CARGO_TARGET_DIR),devices/partition/target)/aarch64-unknown-none/release
PARTITION_BIN := build/partitions

# The bare-metal EL1 test guests: a cargo workspace of their own (tests/guests/README.md).
GUESTS := hello smp timers vfe-restart cpu-off-irq cpu-on-foreign trespass victim ticker irq-timer irq-sgi irq-burst irq-foreign irq-passthrough echo vbe vfe vfe-hostile vbench hostile-sysreg hostile vfe-net-hostile
GUEST_TARGET := aarch64-unknown-none
GUEST_MANIFEST := tests/guests/Cargo.toml
GUEST_ELF_DIR := $(or $(CARGO_TARGET_DIR),tests/guests/target)/$(GUEST_TARGET)/release
GUEST_BIN := build/guests-bin
GUEST_SMOKE_TARGET_DIR := tests/guests/target/smoke
GUEST_SMOKE_BIN := build/guests-smoke

# Linux partitions (docs/linux.md): the kernel and busybox come from tools/fetch-guest,
# the initramfs is built from tests/linux/init.
GUEST_CACHE := build/guests
BUSYBOX := $(GUEST_CACHE)/busybox-arm64
INITRAMFS := $(GUEST_CACHE)/initramfs.cpio.gz
# The same /init plus the cloud kernel's virtio modules (tools/fetch-guest
# modules-cloud-arm64; `order` is their load order), for tests/linux/linux-virtio.dts,
# and brd (not in `order`: /init's ferry.diskbench=1 loads it with its own parameters).
MODULES := $(GUEST_CACHE)/modules-cloud-arm64
INITRAMFS_VIRTIO := $(GUEST_CACHE)/initramfs-virtio.cpio.gz
MODULES_EXTRA := brd.ko.xz

.DEFAULT_GOAL := image
# Steps of one target (deps, then images, ...) must run in order even under `make -j`.
.NOTPARALLEL:
.PHONY: all image images deps guests initramfs partitions test-guests guest-smoke ferry-tool test run \
	run-linux disk bench coverage fuzz clippy fmt clean help

all: image

deps:
	@tools/deps.sh

image:
	$(CARGO) build --release -p ferry-hypervisor --target $(TARGET) \
		--target-dir $(EL2_TARGET_DIR) --no-default-features --features $(PLATFORM)
	@mkdir -p $(OUT)
	cp $(ELF) $(OUT)/ferry.elf
	$(OBJCOPY) -O binary $(OUT)/ferry.elf $(OUT)/ferry.img
	@magic=$$(od -An -tx1 -j 0x38 -N 4 $(OUT)/ferry.img | tr -d ' \n'); \
	if [ "$$magic" != 41524d64 ]; then \
		echo "error: $(OUT)/ferry.img has no arm64 Image magic \"ARM\\x64\" at 0x38" \
			"(found '$$magic'); removed it" >&2; \
		rm -f $(OUT)/ferry.img; exit 1; \
	fi
	@echo "image: $(OUT)/ferry.img ($$(stat -c %s $(OUT)/ferry.img) bytes, arm64 Image)"

images:
	@for p in $(PLATFORMS); do \
		$(MAKE) --no-print-directory image PLATFORM=$$p || exit 1; \
	done

guests:
	@tools/fetch-guest
	@$(MAKE) --no-print-directory -s initramfs

initramfs: $(INITRAMFS) $(INITRAMFS_VIRTIO)

# /etc of the initramfs: root's password for the getty on hvc0 (tests/linux/etc/README.md).
INITRAMFS_ETC := tests/linux/etc/passwd tests/linux/etc/shadow tests/linux/etc/group
INITRAMFS_FILES := --file tests/linux/etc/passwd:/etc/passwd \
	--file tests/linux/etc/shadow:/etc/shadow:0600 --file tests/linux/etc/group:/etc/group
# busybox udhcpc's script for /init's ferry.net=dhcp (docs/linux.md "Networking").
INITRAMFS_ETC += tests/linux/udhcpc.script
INITRAMFS_FILES += --file tests/linux/udhcpc.script:/etc/udhcpc.script:0755

$(INITRAMFS): tests/linux/init tools/mkinitramfs $(BUSYBOX) $(INITRAMFS_ETC)
	tools/mkinitramfs -o $@ --busybox $(BUSYBOX) --init tests/linux/init $(INITRAMFS_FILES)

$(INITRAMFS_VIRTIO): tests/linux/init tools/mkinitramfs $(BUSYBOX) $(MODULES)/order \
		$(addprefix $(MODULES)/,$(MODULES_EXTRA)) $(INITRAMFS_ETC)
	tools/mkinitramfs -o $@ --busybox $(BUSYBOX) --init tests/linux/init $(INITRAMFS_FILES) \
		$$(sed 's|^|--module $(MODULES)/|' $(MODULES)/order) \
		$(foreach m,$(MODULES_EXTRA),--file $(MODULES)/$(m):/lib/modules/$(m))

# (A cache from before brd was added has `order` but no brd.ko.xz: fetched again.)
$(MODULES)/order $(addprefix $(MODULES)/,$(MODULES_EXTRA)):
	@tools/fetch-guest modules-cloud-arm64

$(BUSYBOX):
	@tools/fetch-guest busybox-arm64

partitions:
	$(CARGO) build --release --manifest-path $(PARTITION_MANIFEST) --target $(GUEST_TARGET)
	@mkdir -p $(PARTITION_BIN)
	@for p in $(PARTITIONS); do \
		$(OBJCOPY) -O binary $(PARTITION_ELF_DIR)/$$p $(PARTITION_BIN)/$$p.bin || exit 1; \
		echo "partition: $(PARTITION_BIN)/$$p.bin ($$(stat -c %s $(PARTITION_BIN)/$$p.bin) bytes)"; \
	done

test-guests:
	$(CARGO) build --release --manifest-path $(GUEST_MANIFEST) --target $(GUEST_TARGET)
	@mkdir -p $(GUEST_BIN)
	@for g in $(GUESTS); do \
		$(OBJCOPY) -O binary $(GUEST_ELF_DIR)/$$g $(GUEST_BIN)/$$g.bin || exit 1; \
		echo "guest: $(GUEST_BIN)/$$g.bin ($$(stat -c %s $(GUEST_BIN)/$$g.bin) bytes)"; \
	done
	@# The virtio-blk scenario's disk image (vfe disk_magic=): sector 0 starts with the
	@# magic line, sectors 8..15 are 'F' bytes; Ferry loads it at the RAM disk's start.
	@printf 'FERRY-DISK-IMAGE-V1\n' > $(GUEST_BIN)/test-disk.img
	@truncate -s 4096 $(GUEST_BIN)/test-disk.img
	@head -c 4096 /dev/zero | tr '\0' 'F' >> $(GUEST_BIN)/test-disk.img
	@echo "disk image: $(GUEST_BIN)/test-disk.img ($$(stat -c %s $(GUEST_BIN)/test-disk.img) bytes)"

guest-smoke:
	$(CARGO) build --release --manifest-path $(GUEST_MANIFEST) --target $(GUEST_TARGET) \
		--features smoke --target-dir $(GUEST_SMOKE_TARGET_DIR)
	@mkdir -p $(GUEST_SMOKE_BIN)
	@for g in $(GUESTS); do \
		$(OBJCOPY) -O binary $(GUEST_SMOKE_TARGET_DIR)/$(GUEST_TARGET)/release/$$g \
			$(GUEST_SMOKE_BIN)/$$g.bin || exit 1; \
	done
	tests/guests/smoke.sh $(GUEST_SMOKE_BIN)

ferry-tool:
	$(CARGO) build --release -p ferry-tool

test: deps images guests partitions test-guests ferry-tool
	$(FERRY_TEST) test $(TEST_ARGS)

run: deps image partitions test-guests \
	$(if $(filter imx8mp-evk,$(PLATFORM))$(findstring linux,$(RUN_SCENARIO)),guests)
	$(FERRY_TEST) run $(RUN_SCENARIO)

run-linux:
	@$(MAKE) --no-print-directory run RUN_SCENARIO=linux-interactive

# The ext4 filesystem of the disk scenarios (linux-disk*: their `prepare` makes the same in
# build/scenarios/<name>/ for each run), from tests/linux/disk-root with mkfs.ext4 -d (no
# root needed; e2fsprogs, `make deps`). Rebuilt only when disk-root changes: a boot that
# wrote to it keeps its files until then. docs/linux.md, "Disks".
DISK_ROOT := tests/linux/disk-root
DISK_IMG := build/disks/linux-disk.img
DISK_SIZE := 64M

disk: $(DISK_IMG)

$(DISK_IMG): $(shell find $(DISK_ROOT))
	@mkdir -p $(dir $@)
	PATH="$$PATH:/usr/sbin:/sbin" mkfs.ext4 -q -F -d $(DISK_ROOT) $@ $(DISK_SIZE)
	@echo "disk: $@ (ext4, $(DISK_SIZE), from $(DISK_ROOT))"

bench: deps images guests partitions test-guests ferry-tool
	$(FERRY_TEST) bench

# Line coverage of the main workspace's host tests. cargo-llvm-cov and the llvm-tools
# rustup component are installed here on first use (not by `make deps`); the instrumented
# build has its own target directory (target/llvm-cov-target).
COVERAGE_DIR := build/coverage

coverage:
	@rustup component list --installed | grep -Eq '^llvm-tools(-preview)?(-|$$)' || \
		rustup component add llvm-tools-preview
	@$(CARGO) llvm-cov --version >/dev/null 2>&1 || $(CARGO) install cargo-llvm-cov --locked
	@mkdir -p $(COVERAGE_DIR)
	$(CARGO) llvm-cov --workspace --ignore-run-fail --json --summary-only --output-path $(COVERAGE_DIR)/summary.json
	@tools/coverage-summary $(COVERAGE_DIR)/summary.json | tee $(COVERAGE_DIR)/summary.txt

# Coverage-guided fuzzing (docs/fuzzing.md): the cargo-fuzz crate hypervisor/fuzz, a
# workspace of its own, one target per parser or state machine that takes input across a
# trust boundary. hypervisor/fuzz/fuzz-all runs each of FUZZ_TARGETS for FUZZ_SECS seconds
# in turn, from its committed seeds (hypervisor/fuzz/corpus/<target>), crash reproducers
# (hypervisor/fuzz/regressions/<target>) and what earlier runs found (build/fuzz/corpus),
# and fails if any crashed (the input lands in hypervisor/fuzz/artifacts/<target>). A
# nightly toolchain and cargo-fuzz are installed here on first use (not by `make deps`).
FUZZ_SECS ?= 30
FUZZ_TARGETS ?= pack_parse config_parse host_dt esr_mmio_decode vgic_regs ioreq_state \
	request_page_reader virtio_backend_device chain_walk copy_engine
FUZZ_SANITIZER ?= none
FUZZ_ARGS ?=
FUZZ_KNOWN_BUGS ?=

fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@CARGO="$(CARGO)" FUZZ_SANITIZER="$(FUZZ_SANITIZER)" FUZZ_ARGS="$(FUZZ_ARGS)" \
		FUZZ_KNOWN_BUGS="$(FUZZ_KNOWN_BUGS)" hypervisor/fuzz/fuzz-all $(FUZZ_SECS) $(FUZZ_TARGETS)

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p ferry-hypervisor --target $(TARGET) \
		--no-default-features --features $(PLATFORM) -- -D warnings
	$(CARGO) clippy --manifest-path $(GUEST_MANIFEST) --target $(GUEST_TARGET) -- -D warnings
	$(CARGO) clippy --manifest-path $(PARTITION_MANIFEST) --target $(GUEST_TARGET) -- -D warnings
	$(CARGO) clippy --manifest-path $(PARTITION_MANIFEST) --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --all --manifest-path $(GUEST_MANIFEST)
	$(CARGO) fmt --all --manifest-path $(PARTITION_MANIFEST)

clean:
	$(CARGO) clean
	$(CARGO) clean --manifest-path $(GUEST_MANIFEST)
	$(CARGO) clean --manifest-path $(PARTITION_MANIFEST)
	@if [ -d build ]; then \
		find build -mindepth 1 -maxdepth 1 ! -name guests -exec rm -rf {} +; \
	fi

help:
	@sed -n '3,28p' Makefile | sed 's/^# \{0,1\}//'
