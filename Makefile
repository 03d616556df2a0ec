# Root Makefile: short commands around CMake (see README.md).
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
# The tests of concurrent code, run under ThreadSanitizer by test-tsan.
TSAN_TESTS ?= test_threadpool test_gallery_concurrency test_concurrency
JOBS ?= $(shell nproc)
DEPS_STAMP := $(BUILD)/.deps-installed

.PHONY: all deps build run test test-asan test-tsan demo fuzz clean format models

all: build

# Install the Debian packages the build needs (idempotent; skipped once done),
# then the face networks' weights.
deps: $(DEPS_STAMP) models
$(DEPS_STAMP): scripts/install-deps
	scripts/install-deps
	@mkdir -p $(BUILD) && touch $@

# The face networks' weights: the model/ folder of the npm package
# @vladmandic/face-api (MIT), pinned with its checksum in models/package-lock.json
# and installed into models/node_modules (git-ignored).  libabis reads them at
# run time (docs/face.md); nothing of the package is committed.
FACE_MODELS_STAMP := models/node_modules/.openabis-installed
models: $(FACE_MODELS_STAMP)
$(FACE_MODELS_STAMP): models/package.json models/package-lock.json | $(DEPS_STAMP)
	cd models && npm ci --no-audit --no-fund --loglevel=error
	@test -s models/node_modules/@vladmandic/face-api/model/face_recognition_model.bin
	@touch $@

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

# The concurrency tests under ThreadSanitizer (only those targets are built).
test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DABIS_SANITIZE_THREAD=ON >/dev/null
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target $(TSAN_TESTS)
	cd $(BUILD_TSAN) && ctest --output-on-failure -j $(JOBS) -R '^($(subst $() ,|,$(TSAN_TESTS)))$$'

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
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
