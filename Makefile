# SPDX-License-Identifier: MIT
# mkmachine — build, test, install.
#
#   make                 build ./mkmachine
#   make deps            install build/test dependencies and oracles (Debian package names)
#   make check           build and run every test (unit + integration)
#   make check SANITIZE=1  the same under ASan+UBSan (objects in build/asan)
#   make demo            build recipes/mastodon-debian.recipe from the Debian mirror and boot it
#   make demo-arch       build the Arch demo recipe from a generated signed repository
#   make bench           benchmarks side by side with the peer tools
#   make fuzz            build the libFuzzer targets (clang): build/fuzz/fuzz-NAME
#   make fuzz-smoke      run each for FUZZ_SECONDS (60) on tests/fuzz/corpus/NAME; fail on a crash
#   make install         PREFIX=/usr/local DESTDIR=

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share/mkmachine
DESTDIR   ?=

CC        ?= gcc
O         ?= build
ifeq ($(SANITIZE),1)
O         := build/asan
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

PKGS      := libcurl libarchive gpgme libzstd libcrypto libseccomp json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS    ?= -O2 -g
# A warning flag only when the compiler knows it (gcc vs clang).
cc-option = $(shell $(CC) -Werror $(1) -E -x c /dev/null >/dev/null 2>&1 && echo $(1))
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers \
             -Wformat=2 $(call cc-option,-Wno-format-truncation) -Wmissing-prototypes -fno-strict-aliasing $(SANFLAGS) $(PKG_CFLAGS) \
             -DMKM_VERSION='"$(VERSION)"' -DMKM_DATADIR='"$(DATADIR)"' -MMD -MP
LDFLAGS   += $(SANFLAGS)
LDLIBS    := $(PKG_LIBS) -lpthread

# Stages and util form libmkm.a; main.c and cli*.c form the binary.
ALL_SRCS  := $(sort $(wildcard builder/*.c builder/*/*.c))
CLI_SRCS  := builder/main.c $(wildcard builder/cli*.c)
LIB_SRCS  := $(filter-out $(CLI_SRCS),$(ALL_SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(O)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(O)/%.o)
LIB       := $(O)/libmkm.a
BIN       := $(O)/mkmachine

UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))

.PHONY: all check unit integration deps keys demo demo-arch bench install uninstall clean fuzz man clang-check fuzz-smoke

all: mkmachine

ifeq ($(O),build)
mkmachine: $(BIN)
	@cp $(BIN) mkmachine
else
mkmachine: $(BIN)
endif

$(BIN): $(CLI_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(LDLIBS)

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC  $<"; $(CC) $(CFLAGS) -c -o $@ $<

$(O)/tests/%: tests/unit/%.c $(UNIT_HELPERS) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  CCLD $@"; $(CC) $(CFLAGS) -Ibuilder -o $@ $< $(UNIT_HELPERS) $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

# The one test command (README and .ci/run use it).
check: mkmachine $(UNIT_BINS) keys
	@MKMACHINE=$(abspath $(BIN)) BUILD=$(abspath $(O)) SANFLAGS="$(SANFLAGS)" tests/run.sh $(UNIT_BINS) $(sort $(wildcard tests/integration/*.sh))

unit: $(UNIT_BINS)
	@MKMACHINE=$(abspath $(BIN)) BUILD=$(abspath $(O)) SANFLAGS="$(SANFLAGS)" tests/run.sh $(UNIT_BINS)

integration: mkmachine keys
	@MKMACHINE=$(abspath $(BIN)) BUILD=$(abspath $(O)) SANFLAGS="$(SANFLAGS)" tests/run.sh $(sort $(wildcard tests/integration/*.sh))

# Debian packages: build (headers), tests (cmocka, gnupg, python3 for the loopback server),
# and the oracles tests compare against (pacman, vercmp, repo-add, busybox, mmdebstrap, nspawn);
# and every program the tests call that a minimal Debian may lack: pgrep/ps (procps), mount and
# umount for the small-tmpfs tests (mount), setsid/flock/nsenter/setpriv (util-linux), apt-get (apt),
# a FUSE file system that shows other owners than the real ones (bindfs, test-recipe), and an ext4
# image whose directory listing fails (mkfs.ext4, e2fsck, debugfs: e2fsprogs; losetup, blockdev).
DEPS := build-essential pkg-config libcurl4-openssl-dev libarchive-dev libgpgme-dev libzstd-dev \
        libssl-dev libseccomp-dev libcmocka-dev gnupg python3 libarchive-tools zstd xz-utils \
        pacman-package-manager makepkg archlinux-keyring arch-install-scripts busybox-static \
        debian-archive-keyring systemd-container pandoc libcap2-bin gpgv gpg-agent clang libjson-c-dev \
        mmdebstrap curl procps time openssh-client mount util-linux apt e2fsprogs iproute2 hostname bindfs

deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# libFuzzer's runtime (make fuzz) is only a Recommends of clang, and named after its version.
	@rt=libclang-rt-$$(clang -dumpversion | cut -d. -f1)-dev; \
	if ! dpkg-query -W -f='$${Status}\n' $$rt 2>/dev/null | grep -q '^install ok installed$$'; then \
		echo "installing: $$rt"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$rt >/dev/null; \
	fi
	@$(MAKE) --no-print-directory keys

keys:
	@keys/refresh.sh

demo: mkmachine keys
	@tests/tools/demo-debian.sh

demo-arch: mkmachine keys
	@tests/tools/demo.sh

bench: mkmachine keys
	@bench/run.sh

# libFuzzer targets, one per parser (clang): build/fuzz/fuzz-NAME, seeds in tests/fuzz/corpus/NAME/.
# The library is compiled once with the sanitizers and coverage (fuzzer-no-link), then linked
# into each target. `make fuzz-smoke` runs every target for FUZZ_SECONDS on a copy of its seeds
# and fails on the first crash, leak or timeout; docs/fuzzing.md says how to run longer.
FUZZ_SECONDS ?= 60
FUZZ_O    := build/fuzz
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers $(FUZZ_SAN) $(PKG_CFLAGS) \
             -DMKM_VERSION='"$(VERSION)"' -DMKM_DATADIR='"$(DATADIR)"' -MMD -MP
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_O)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_O)/obj/%.o)
FUZZ_LIB  := $(FUZZ_O)/libmkm-fuzz.a

.PHONY: fuzz-smoke
fuzz: $(FUZZ_BINS)

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC  $< (fuzz)"; clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_O)/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	@echo "  CCLD $@"; clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ibuilder -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) -lpthread

# The same sources under clang (its -Werror catches what gcc lets pass, e.g. a goto that
# bypasses a cleanup variable's initialisation), and the unit tests built with it.
clang-check:
	@$(MAKE) --no-print-directory O=build/clang CC=clang build/clang/mkmachine \
		$(UNIT_SRCS:tests/unit/%.c=build/clang/tests/%)
	@MKMACHINE=$(abspath build/clang/mkmachine) BUILD=$(abspath build/clang) tests/run.sh \
		$(UNIT_SRCS:tests/unit/%.c=build/clang/tests/%)

fuzz-smoke: $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/smoke.sh $(FUZZ_BINS)

man: docs/mkmachine.1 docs/mkmachine.recipe.5 docs/mkmachine.policy.5

docs/%: docs/%.md
	pandoc -s -t man -o $@ $<

install: mkmachine man
	install -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/mkmachine
	install -Dm644 docs/mkmachine.1 $(DESTDIR)$(MANDIR)/man1/mkmachine.1
	install -Dm644 docs/mkmachine.recipe.5 $(DESTDIR)$(MANDIR)/man5/mkmachine.recipe.5
	install -Dm644 docs/mkmachine.policy.5 $(DESTDIR)$(MANDIR)/man5/mkmachine.policy.5
	@for d in keys/archlinux keys/debian; do \
		[ -d $$d ] && for f in $$d/*; do install -Dm644 $$f $(DESTDIR)$(DATADIR)/$$f; done; done; true
	@for f in recipes/*.recipe; do install -Dm644 $$f $(DESTDIR)$(DATADIR)/$$f; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mkmachine $(DESTDIR)$(MANDIR)/man1/mkmachine.1 $(DESTDIR)$(MANDIR)/man5/mkmachine.recipe.5 \
		$(DESTDIR)$(MANDIR)/man5/mkmachine.policy.5
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf build mkmachine

-include $(shell find $(O)/builder $(O)/tests $(FUZZ_O) -name '*.d' -type f 2>/dev/null)
