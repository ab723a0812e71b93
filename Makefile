# mdscale - the everyday targets over the Meson build.
#
#   make run     install what is missing, build, start the daemon with the
#                example deployment, print what to do next
#   make test    install, build, run every test (default and sanitizer builds)
#   make asan    the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz    every libFuzzer harness of fuzz/ for FUZZ_SECONDS (60) each,
#                growing the corpus in fuzz/corpus/
#   make install install under PREFIX (default /usr/local), staged in DESTDIR
#   make deb     a Debian package (mdscale_VERSION_ARCH.deb)
#   make bench   the benchmarks under bench/
#   make lint    cppcheck, clang-tidy (.clang-tidy; any finding fails),
#                and no JSON in module headers outside the edges
#                (tools/json-headers.sh); make format: clang-format

BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
# The command that builds: NINJA="ninja -j2" holds it to two jobs. Meson
# reads NINJA from the environment as the path of the ninja program, where
# options would not do, so it is kept out of the commands' environment
# (Meson then finds ninja on PATH).
NINJA ?= ninja
unexport NINJA
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps deps-test deps-lint build build-asan build-tsan build-fuzz run test \
	test-default asan fuzz valgrind bench lint format clean install deb

all: build

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test

deps-lint:
	@sh scripts/deps.sh lint

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false

$(TSAN_BUILD)/build.ninja:
	meson setup $(TSAN_BUILD) --buildtype=debug \
		-Db_sanitize=thread -Db_lundef=false

# libFuzzer needs clang; only the harnesses (and what they link) are built.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized \
		-Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
		-Db_lundef=false

build: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

build-asan: deps $(ASAN_BUILD)/build.ninja
	$(NINJA) -C $(ASAN_BUILD)

build-tsan: deps $(TSAN_BUILD)/build.ninja
	$(NINJA) -C $(TSAN_BUILD)

build-fuzz: deps-test $(FUZZ_BUILD)/build.ninja
	$(NINJA) -C $(FUZZ_BUILD) fuzz

fuzz: build-fuzz
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) keep

run: build
	@sh scripts/deps.sh run
	@sh scripts/run.sh $(BUILD)

# Every test, in the default build and under ASan+UBSan; the unit tests
# (the gateway's threads among them) under ThreadSanitizer as well; and
# cppcheck (make lint's clang-tidy takes too long to run on every test).
test: deps-test build build-asan build-tsan build-fuzz
	@sh scripts/test.sh $(BUILD) $(ASAN_BUILD) unit:$(TSAN_BUILD) \
		fuzz:$(FUZZ_BUILD)

test-default: deps-test build
	@MDSCALE_SKIP_PACKAGE=1 sh scripts/test.sh $(BUILD)

asan: deps-test build-asan
	@MDSCALE_SKIP_PACKAGE=1 sh scripts/test.sh $(ASAN_BUILD)

valgrind: build
	meson test -C $(BUILD) --suite unit --wrapper 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite'

# The binary, man page, completions, systemd unit and example configuration.
install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	meson install -C $(BUILD) --destdir "$(DESTDIR)"

deb:
	@sh scripts/deb.sh

bench: build
	@sh bench/run.sh $(BUILD)

lint: deps-lint build
	sh tools/cppcheck.sh
	@echo "clang-tidy over src/*.c, see .clang-tidy (minutes)"
	@run-clang-tidy -quiet -p $(BUILD) 'src/.*\.c$$' \
		>$(BUILD)/clang-tidy.log 2>&1 || { \
		grep -v -e '^clang-tidy' -e ' generated\.$$' \
			$(BUILD)/clang-tidy.log; \
		echo "lint: clang-tidy failed (.clang-tidy; $(BUILD)/clang-tidy.log)"; \
		exit 1; }
	sh tools/json-headers.sh

format:
	clang-format -i $$(find src tests/unit fuzz -name "*.[ch]")

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-deb
