# hoopctl — one binary, built with every library through pkg-config.
#   make            build ./hoopctl
#   make test       deps, unit + integration tests, then again under ASan+UBSan and TSan
#   make test-asan  only the sanitizer pass
#   make test-tsan  only the ThreadSanitizer pass
#   make demo       the scripted tour on a throwaway PostgreSQL
#   make install    binary, man pages and completions under $(PREFIX)

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
SAN      ?=
PKGS      = libevent libevent_openssl libevent_pthreads jansson libjwt libcurl openssl sqlite3 libpq ncursesw readline
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS   = $(PKG_LIBS) -lpg_query -lpthread -lm

ifeq ($(SAN),1)
  ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS    += -fsanitize=address,undefined
endif

ifeq ($(SAN),thread)
  ALL_CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS    += -fsanitize=thread
endif

ifeq ($(BUILD),build)
  BIN = hoopctl
else
  BIN = $(BUILD)/hoopctl
endif

SRCS      = $(sort $(wildcard src/*/*.c))
OBJS      = $(SRCS:%.c=$(BUILD)/%.o)
LIB       = $(BUILD)/libhoopctl.a
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:%.c=$(BUILD)/%)
# Test drivers: small C programs that integration tests run (tests/integration/*.c).
DRIVER_SRCS = $(sort $(wildcard tests/integration/*.c))
DRIVER_BINS = $(DRIVER_SRCS:%.c=$(BUILD)/%)

.PHONY: all deps test test-unit test-integration test-asan clean install demo bench fuzz completions

all: $(BIN)

$(BIN): $(BUILD)/cmd/hoopctl.o $(LIB)
	$(SAY) "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(OBJS)
	@rm -f $@
	$(SAY) "  AR      $@"
	$(Q)ar rcs $@ $^

# V=1 shows full compiler command lines.
ifneq ($(V),1)
  Q = @
  SAY = @echo
else
  SAY = @:
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(SAY) "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(SAY) "  CCLD    $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/tests/integration/%: tests/integration/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(SAY) "  CCLD    $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

deps:
	@./.ci/deps

# Regenerate the committed completion scripts from the command table.
completions: $(BIN)
	./$(BIN) completion bash > completions/hoopctl.bash
	./$(BIN) completion zsh > completions/_hoopctl
	./$(BIN) completion fish > completions/hoopctl.fish

test: deps
	$(MAKE) all
	$(MAKE) $(UNIT_BINS) $(DRIVER_BINS)
	tests/run.sh --bin ./hoopctl --build $(BUILD)
	$(MAKE) test-asan
	$(MAKE) test-tsan

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 build-asan/hoopctl
	$(MAKE) BUILD=build-asan SAN=1 $(UNIT_SRCS:%.c=build-asan/%) $(DRIVER_SRCS:%.c=build-asan/%)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/run.sh --bin build-asan/hoopctl --build build-asan --label asan

# The whole suite again under ThreadSanitizer: the code on threads of its own
# (the gateway's event loops with --threads, the server's JWKS fetcher and
# webhook sender, connect's shipper and review waiters, the TUI's worker) is
# reached from many tests. A race report ends the process (exit 66), which
# fails the test. Reports from inside OpenSSL, which is not built for TSan,
# are dropped (tests/tsan.supp says why).
test-tsan:
	$(MAKE) BUILD=build-tsan SAN=thread build-tsan/hoopctl
	$(MAKE) BUILD=build-tsan SAN=thread $(UNIT_SRCS:%.c=build-tsan/%) $(DRIVER_SRCS:%.c=build-tsan/%)
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  tests/run.sh --bin build-tsan/hoopctl --build build-tsan --label tsan

test-unit: $(BIN) $(UNIT_BINS)
	tests/run.sh --bin ./$(BIN) --build $(BUILD) --only unit

test-integration: $(BIN) $(DRIVER_BINS)
	tests/run.sh --bin ./$(BIN) --build $(BUILD) --only integration

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/hoopctl
	for m in man/*.[158]; do s=$${m##*.}; install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done
	install -m 0644 completions/hoopctl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hoopctl
	install -m 0644 completions/_hoopctl $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_hoopctl
	install -m 0644 completions/hoopctl.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/hoopctl.fish

clean:
	rm -rf build build-asan build-tsan build-fuzz hoopctl

-include $(OBJS:.o=.d) $(BUILD)/cmd/hoopctl.d

# identity: terminal QR codes of the device-login link (libqrencode).
LDLIBS += $(shell pkg-config --libs libqrencode 2>/dev/null || echo -lqrencode)
# libFuzzer targets (clang): the wire decoder, the startup/auth state machine
# and the policy engine (hostile SQL and result values), built into
# build-fuzz/ and run for FUZZ_SECONDS in total (split evenly between the
# targets) on a copy of the committed seed corpus.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS  = decoder startup_auth policy
FUZZ_SRCS     = src/pgwire/codec.c src/pgwire/startup.c src/pgwire/auth.c src/util/buf.c src/util/util.c
# the policy engine (without the guard, which is the gateway's glue)
FUZZ_POLICY_SRCS = $(filter-out src/policy/guard.c,$(wildcard src/policy/*.c)) src/util/log.c
FUZZ_FLAGS    = -std=c17 -D_GNU_SOURCE -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -g -O1 -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) include/hoopctl/pgwire.h
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRCS) $(shell pkg-config --libs openssl)

build-fuzz/fuzz_policy: tests/fuzz/fuzz_policy.c $(FUZZ_POLICY_SRCS) $(FUZZ_SRCS) include/hoopctl/policy.h
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) $(shell pkg-config --cflags jansson openssl libpq) -o $@ $< $(FUZZ_POLICY_SRCS) \
	  $(FUZZ_SRCS) $(shell pkg-config --libs jansson openssl libpq) -lpg_query -lm

fuzz: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus-$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus-$$t/ ; \
	  echo "fuzz: $$t for $$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) ))s"; \
	  build-fuzz/fuzz_$$t -max_total_time=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) )) -max_len=4096 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus-$$t \
	    >build-fuzz/$$t.log 2>&1 || { tail -40 build-fuzz/$$t.log; exit 1; }; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' build-fuzz/$$t.log; \
	done

# Throughput/latency/memory comparison: direct vs pgbouncer vs the gateway.
bench: $(BIN) $(BUILD)/tests/bench/ingest_bench
	tests/bench/run.sh
	tests/bench/ingest.sh --bin ./$(BIN) --driver $(BUILD)/tests/bench/ingest_bench
	HOOPCTL_BIN=$(CURDIR)/$(BIN) tests/bench/policy.sh
	HOOPCTL_BIN=$(CURDIR)/$(BIN) tests/bench/connect.sh
	HOOPCTL_BIN=$(CURDIR)/$(BIN) tests/bench/cpu.sh
	HOOPCTL_BIN=$(CURDIR)/$(BIN) tests/bench/export.sh
	HOOPCTL_BIN=$(CURDIR)/$(BIN) tests/bench/sessions.sh
# Server bench: ingest events/s on SQLite and PostgreSQL at batch sizes 1, 100
# and 1000, and the review long-poll wake-up latency (tests/bench/ingest.sh).
.PHONY: bench-server
$(BUILD)/tests/bench/ingest_bench: tests/bench/ingest_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench-server: $(BIN) $(BUILD)/tests/bench/ingest_bench
	tests/bench/ingest.sh --bin ./$(BIN) --driver $(BUILD)/tests/bench/ingest_bench

# The scripted tour (tests/demo/run.sh): a throwaway PostgreSQL with sample PII,
# an OpenID provider (npm ci), the server on SQLite, alice's psql through
# `hoopctl connect`, bob's approval, the audit trail and the replay; all removed on exit.
demo: deps $(BIN)
	@HOOPCTL_BIN=$(CURDIR)/$(BIN) bash tests/demo/run.sh
