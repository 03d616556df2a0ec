# Root Makefile: short commands around CMake (see README.md).
BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc)
DEPS_STAMP := $(BUILD)/.deps-installed

.PHONY: all deps build run test test-asan demo clean format

all: build

# Install the Debian packages the build needs (idempotent; skipped once done).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps
	scripts/install-deps
	@mkdir -p $(BUILD) && touch $@

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The main job on the embedded default store: the end-to-end demo.
run: build
	scripts/demo $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DABIS_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ctest --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
