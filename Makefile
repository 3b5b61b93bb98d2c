# herd: GNU make build.
#   make          release build: build/libherd.a, build/herd, build/examples/*
#   make run      build, then serve the built-in HTTP worker on 127.0.0.1:8080
#   make test     ASan+UBSan build under build/asan/, then every test (prove)
#   make stress   storms, a long reload loop and valgrind on the release
#                 build (tests/stress/; CI runs it too)
#   make bench    CPU per request against nginx and a floor server, memory
#                 per idle connection, lifecycle figures (bench/)
#   make shape    file and function sizes, exported names (tools/shape.sh)
#   make install  PREFIX (/usr/local) and DESTDIR honoured

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
OBJCOPY ?= objcopy

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Isrc -Idemo $(CFLAGS)
SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all \
          -fno-omit-frame-pointer

LIB_SRC   = $(wildcard src/*.c)
DEMO_SRC  = $(wildcard demo/*.c)
EX_SRC    = $(wildcard examples/*.c)
UNIT_SRC  = $(wildcard tests/unit/*.c)
PROG_SRC  = $(wildcard tests/progs/*.c)

# $(call objs,DIR,SOURCES)
objs = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all run test unit asan stress bench fuzz shape install uninstall clean

all: $(BUILD)/libherd.a $(BUILD)/herd $(patsubst examples/%.c,$(BUILD)/examples/%,$(EX_SRC))

# ---- one set of rules, instantiated for the release and the ASan build ----
define variant
$(1)/obj/%.o: %.c $$(wildcard include/*.h src/*.h demo/*.h cmd/*.h tests/unit/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $(2) -c $$< -o $$@

# libherd.a, what programs link and what is installed, is one relocatable
# object whose only global symbols are herd_*: every internal name
# (log_open, chan_new, addr_parse...) is made local when it is built, so
# none can clash with a name of the program that links it, and a new one
# needs no prefix to stay private. The unit tests, test programs and
# benches that reach inside link libherd_int.a, the plain archive.
$(1)/libherd_int.a: $$(call objs,$(1),$$(LIB_SRC))
	rm -f $$@
	$$(AR) rcs $$@ $$^

$(1)/libherd.a: $$(call objs,$(1),$$(LIB_SRC))
	$$(LD) -r -o $(1)/libherd.o $$^
	$$(OBJCOPY) --wildcard --keep-global-symbol='herd_*' $(1)/libherd.o
	rm -f $$@
	$$(AR) rcs $$@ $(1)/libherd.o

$(1)/herd: $$(call objs,$(1),cmd/herd.c cmd/ctl.c $$(DEMO_SRC)) $(1)/libherd.a
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^

$(1)/examples/%: $(1)/obj/examples/%.o $(1)/libherd.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$^
endef

$(eval $(call variant,$(BUILD),))
$(eval $(call variant,$(BUILD)/asan,$(SAN)))

ASAN_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRC))

$(BUILD)/asan/tests/%: $(BUILD)/asan/obj/tests/unit/%.o $(call objs,$(BUILD)/asan,$(DEMO_SRC)) $(BUILD)/asan/libherd_int.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^

# Programs on libherd that the integration tests drive.
$(BUILD)/asan/progs/%: $(BUILD)/asan/obj/tests/progs/%.o $(BUILD)/asan/libherd_int.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^

asan: $(BUILD)/asan/libherd.a $(BUILD)/asan/herd \
      $(patsubst examples/%.c,$(BUILD)/asan/examples/%,$(EX_SRC)) $(ASAN_UNIT) \
      $(patsubst tests/progs/%.c,$(BUILD)/asan/progs/%,$(PROG_SRC))

run: all
	$(BUILD)/herd -l 127.0.0.1:8080

# The release build's test programs, for make stress.
$(BUILD)/progs/%: $(BUILD)/obj/tests/progs/%.o $(BUILD)/libherd_int.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

# The integration tests find the binaries through HERD_BUILD.
test: asan
	HERD_BUILD=$(CURDIR)/$(BUILD)/asan \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	prove $(PROVE_FLAGS) $(ASAN_UNIT) tests/integ/*.py

# Storms, memory and fd stability, on the release build: what users run,
# and what valgrind can run. Bounded (a few minutes); figures are printed
# as TAP comments, see tests/stress/.
stress: all $(patsubst tests/progs/%.c,$(BUILD)/progs/%,$(PROG_SRC))
	@echo "stress: the whole TAP output goes to $(BUILD)/stress.log"
	HERD_BUILD=$(CURDIR)/$(BUILD) prove -v $(PROVE_FLAGS) tests/stress/*.py \
	    > $(BUILD)/stress.log 2>&1; rc=$$?; \
	    grep -E '^(not ok|# (storm|memcheck|reloads|bigreload)|tests/|All tests|Result)' \
	        $(BUILD)/stress.log; \
	    if [ $$rc -ne 0 ]; then tail -80 $(BUILD)/stress.log; fi; exit $$rc

# libFuzzer targets (clang): each runs FUZZ_SECONDS from its seed corpus
# in fuzz/corpus/; what it learns goes to build/fuzz/, a crash stops make.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -g -O1
FUZZ_TARGETS  = $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/*.c))

$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC) demo/http_parse.c $(wildcard include/*.h src/*.h demo/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Isrc -Idemo $(FUZZ_FLAGS) \
	    -o $@ $< $(LIB_SRC) demo/http_parse.c

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	    n=$$(basename $$t); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	    if ! $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$n- \
	        $(BUILD)/fuzz/corpus-$$n fuzz/corpus/$$n \
	        > $(BUILD)/fuzz/$$n.log 2>&1; then \
	        tail -40 $(BUILD)/fuzz/$$n.log; exit 1; \
	    fi; \
	    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' \
	        $(BUILD)/fuzz/$$n.log; \
	done

# Figures, not pass/fail: see bench/.
$(BUILD)/chanbench: bench/chanbench.c $(BUILD)/libherd_int.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^

# The floor of run.py: the least work a request costs on this kernel.
$(BUILD)/floor: bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

# The code's shape against issue 14's goals: file and function sizes, and
# the library's exported names. A report; tools/shape.sh --check fails.
shape: $(BUILD)/libherd.a
	tools/shape.sh $(BUILD)/libherd.a

bench: all $(BUILD)/chanbench $(BUILD)/floor
	python3 bench/run.py
	python3 bench/idle.py
	$(BUILD)/chanbench
	python3 bench/lifecycle.py
	python3 bench/scaledown.py
	python3 bench/stuck.py

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	           $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/herd $(DESTDIR)$(PREFIX)/bin/herd
	install -m 644 $(BUILD)/libherd.a $(DESTDIR)$(PREFIX)/lib/libherd.a
	install -m 644 include/herd.h $(DESTDIR)$(PREFIX)/include/herd.h
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 docs/herd.1 $(DESTDIR)$(PREFIX)/share/man/man1/herd.1
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define HERD_VERSION "\(.*\)"/\1/p' include/herd.h)|g' \
	    herd.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/herd.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/herd $(DESTDIR)$(PREFIX)/lib/libherd.a \
	      $(DESTDIR)$(PREFIX)/include/herd.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/herd.pc \
	      $(DESTDIR)$(PREFIX)/share/man/man1/herd.1

clean:
	rm -rf $(BUILD)

.SECONDARY:
