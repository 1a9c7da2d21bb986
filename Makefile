# Front door. Every target installs missing Debian packages first (scripts/deps.sh),
# then configures CMake into build/ (and build/asan for the sanitizer build).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
DATA ?= ../shared/data/movielens-small/ratings.csv

.PHONY: all deps build asan test test-fast demo fuzz bench format format-check clean config-doc

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DSR_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)

# Release build tests, the unit tests once per OpenBLAS core this CPU can run
# (scripts/blas_matrix.sh: one summary line per core), then the same suite
# under ASan+UBSan.
test: build asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	JOBS=$(JOBS) bash scripts/blas_matrix.sh $(BUILD)
	cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS) --timeout 600 -LE noasan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

demo: build
	@bash scripts/demo.sh "$(DATA)"

fuzz: deps
	@cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSR_FUZZ=ON >/dev/null
	@cmake --build $(BUILD)/fuzz -j $(JOBS) --target fuzz_all
	@for f in tests/fuzz/fuzz_*.c; do t=$$(basename $$f .c); \
	  echo "== $$t"; $(BUILD)/fuzz/$$t -max_total_time=60 -max_len=4096 tests/fuzz/corpus_$${t#fuzz_} || exit 1; done

bench: build
	@bash bench/run_all.sh

config-doc: build
	$(BUILD)/streamrec config --markdown > docs/CONFIGURATION.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
