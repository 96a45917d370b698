# firstboot and imagegen: one non-recursive Makefile.
#   make                 build both programs
#   make check           unit and end-to-end tests (installs missing Debian packages)
#   make demo            the whole flow on an embedded default bundle
#   make bench           benchmarks, as ratios against a baseline in the same run
#   make vmtest          a baked Debian 12 image boots under QEMU and provisions itself
#   make lint            cppcheck, shellcheck, clang-format
#   make fuzz            every tests/fuzz target under libFuzzer, ASan and UBSan
#                        (FUZZ_SECONDS=N each, default 60)
#   make deb             Debian packages in build/deb/
#   make SANITIZER=address,undefined check

PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0
PKGS     := yaml-0.1 json-c libcurl libarchive libcrypto libsystemd libsodium zlib libpcre2-8 hiredict libssl
SANITIZER ?=
BUILD    ?= build$(if $(SANITIZER),-san)

CC       ?= cc
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Werror
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS   ?= -O2 -g
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
override CFLAGS += -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) -iquote common -DFIRSTBOOT_VERSION=\"$(VERSION)\" \
	-DMULTIARCH=\"$(MULTIARCH)\" \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl, libarchive, libsystemd, libcrypto, hiredict and libssl are dlopen()ed
# when first needed (common/http.c, iso.c, journal.c, crypto.c, redis.c, imagegen/tarball.c):
# firstboot links none of them. It links libsodium (SHA-256 and HMAC,
# which every run uses). imagegen's pki.c (and so the tests) link libcrypto.
LDLIBS   += $(shell pkg-config --libs $(filter-out libcurl libarchive libsystemd libcrypto hiredict libssl,$(PKGS)) 2>/dev/null)
CRYPTO_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
override LDFLAGS += -pie -Wl,-z,relro,-z,now
ifneq ($(SANITIZER),)
override CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -O1
override LDFLAGS += -fsanitize=$(SANITIZER)
endif
# FUZZ=1 (set by `make fuzz`): clang, coverage for libFuzzer, and undefined
# behaviour that stops the run instead of printing a line.
ifneq ($(FUZZ),)
override CFLAGS  += -fsanitize=fuzzer-no-link -fno-sanitize-recover=all
endif
FUZZ_SECONDS ?= 60

COMMON_SRC := $(sort $(wildcard common/*.c))
FB_SRC     := $(filter-out firstboot/main.c,$(sort $(wildcard firstboot/*.c)))
IG_SRC     := $(filter-out imagegen/main.c,$(sort $(wildcard imagegen/*.c)))
UNIT_SRC   := $(sort $(wildcard tests/unit/test-*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBCOMMON := $(BUILD)/libcommon.a
LIBFB     := $(BUILD)/libfirstboot.a
LIBIG     := $(BUILD)/libimagegen.a
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BIN  := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(sort $(wildcard tests/tools/*.c)))
# Fuzz targets (tests/fuzz/fuzz-*.c): linked with libFuzzer under FUZZ=1,
# else with tests/fuzz/replay.c, which `make check` runs over the committed
# corpus and past crashes.
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))

all: $(BUILD)/firstboot $(BUILD)/imagegen $(TOOL_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBFB): $(call obj,$(FB_SRC))
$(LIBIG): $(call obj,$(IG_SRC))
$(LIBCOMMON) $(LIBFB) $(LIBIG):
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^ $(if $^,,$(BUILD)/empty.o)

$(BUILD)/empty.o:
	@mkdir -p $(dir $@)
	@printf '' | $(CC) $(CFLAGS) -x c -c - -o $@
$(LIBFB) $(LIBIG): | $(BUILD)/empty.o

$(BUILD)/firstboot: $(BUILD)/obj/firstboot/main.o $(LIBFB) $(LIBCOMMON)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# imagegen does not link the agent's library: what bake shares with the
# agent (firstboot.conf's parser, `firstboot clean`'s list, module
# preparation and the run order it uses) is in common/.
$(BUILD)/imagegen: $(BUILD)/obj/imagegen/main.o $(LIBIG) $(LIBCOMMON)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRYPTO_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBFB) $(LIBIG) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRYPTO_LIBS)

# Small programs the end-to-end tests and make bench drive (tests/tools/*.c), linked
# like the unit tests.
$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIBFB) $(LIBIG) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRYPTO_LIBS)

$(BUILD)/tests/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(if $(FUZZ),,$(BUILD)/obj/tests/fuzz/replay.o) \
		$(LIBFB) $(LIBIG) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $(if $(FUZZ),-fsanitize=fuzzer) -o $@ $^ $(LDLIBS) $(CRYPTO_LIBS)

# fuzz-tar checks our tar reader against libarchive, linked in that test only.
$(BUILD)/tests/fuzz/fuzz-tar: LDLIBS += $(shell pkg-config --libs libarchive 2>/dev/null)

deps:
	@packaging/deps.sh

# Debian packages (firstboot, imagegen, firstboot-modules) into
# $(BUILD)/deb/, with dpkg-deb; packaging/deb.sh says what goes where.
deb: all
	@packaging/deb.sh $(BUILD) $(VERSION)

# Rewrites tests/cases/render/*/expected from the current imagegen, to be
# reviewed in the diff.
golden: all
	@BUILD=$(BUILD) tests/golden.sh --update

unit: all $(UNIT_BIN) $(FUZZ_BIN)
	@BUILD=$(BUILD) tests/run.sh unit

e2e: all
	@BUILD=$(BUILD) tests/run.sh e2e

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(FUZZ_BIN)
	@BUILD=$(BUILD) tests/run.sh all

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench.sh

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang SANITIZER=address,undefined FUZZ=1 fuzz-bins
	@BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

fuzz-bins: $(FUZZ_BIN)

# A baked Debian 12 image provisions itself at first boot under QEMU (TCG);
# the root file system is cached (tests/vm/run.sh).
vmtest: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/vm/run.sh

C_FILES  = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find common firstboot imagegen tests -name '*.[ch]')
SH_FILES = $(shell git ls-files '*.sh' 2>/dev/null)

# cppcheck does not model __attribute__((cleanup)) (our _cleanup_free_),
# so its memleak check is off; LeakSanitizer checks leaks in every test run.
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --std=c11 -Icommon -D__GNUC__ --suppress=missingIncludeSystem \
		--suppress=memleak \
		common firstboot imagegen tests/unit tests/tools tests/fuzz
	shellcheck -x $(SH_FILES)
	clang-format --dry-run -Werror $(C_FILES)

format:
	clang-format -i $(C_FILES)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/usr/lib/firstboot/modules
	install -m 0755 $(BUILD)/firstboot $(DESTDIR)$(PREFIX)/bin/firstboot
	install -m 0755 $(BUILD)/imagegen $(DESTDIR)$(PREFIX)/bin/imagegen
	for p in packaging/man/*.[1-8]; do \
		s=$${p##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
		install -m 0644 $$p $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	install -d $(DESTDIR)/usr/lib/systemd/catalog
	install -m 0644 units/firstboot.catalog $(DESTDIR)/usr/lib/systemd/catalog/firstboot.catalog
	for m in modules/*/; do \
		[ -d "$$m" ] || continue; \
		id=$$(basename $$m); install -d $(DESTDIR)/usr/lib/firstboot/modules/$$id; \
		for f in $$m*; do [ -f "$$f" ] || continue; install -m $$( [ -x $$f ] && echo 0755 || echo 0644) $$f $(DESTDIR)/usr/lib/firstboot/modules/$$id/; done; \
	done

clean:
	rm -rf build build-san tests/.tmp

.PHONY: all deps deb unit e2e check demo bench vmtest golden lint format install clean fuzz fuzz-bins
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
