# Root Makefile: short commands around CMake (see README.md).
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
DEPS_STAMP := $(BUILD)/.deps-installed

.PHONY: all deps build run test test-asan demo fuzz clean format

all: build

# Install the Debian packages the build needs (idempotent; skipped once done).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps
	scripts/install-deps
	@mkdir -p $(BUILD) && touch $@

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The main job: abisd on 127.0.0.1:8080 on the embedded store in ./var (created
# on first run with a demo client whose API key is printed once).
run: build
	scripts/serve $(BUILD)

# The end-to-end demo of the operator command on a fresh store in ./var/demo.
demo: build
	scripts/demo $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DABIS_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS)

# libFuzzer on abisd's request parsing (fuzz/fuzz_request.c) for FUZZ_SECONDS;
# new inputs go to $(BUILD_FUZZ)/corpus, crashes to $(BUILD_FUZZ)/ (docs/FUZZING.md).
fuzz: deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang (scripts/install-deps)"; exit 1; }
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DABIS_FUZZ=ON \
		-DBUILD_TESTING=OFF >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_request
	mkdir -p $(BUILD_FUZZ)/corpus
	cd $(BUILD_FUZZ) && ./fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 corpus ../fuzz/corpus/request

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
