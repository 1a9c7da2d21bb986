# Front door. Every target installs missing Debian packages first (scripts/deps.sh),
# then configures CMake into build/ (build/asan: ASan+UBSan, build/tsan: TSan).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
DATA ?= ../shared/data/movielens-small/ratings.csv

.PHONY: all deps build asan tsan test test-kafka test-fast demo fuzz bench format format-check clean config-doc metrics-doc

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DSR_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)

# ThreadSanitizer build (-O1); `make test` runs its "threads" tests.
tsan: deps
	@cmake -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=Debug -DSR_TSAN=ON >/dev/null
	@cmake --build $(BUILD)/tsan -j $(JOBS)

# Release build tests, the unit tests once per OpenBLAS core this CPU can run
# (scripts/blas_matrix.sh: one summary line per core), the same suite under
# ASan+UBSan, the tests that start threads under TSan, then format-check.
# Each ctest prints its summary line; with CI set, a skipped test fails
# (scripts/ctest.sh).
test: build asan tsan
	bash scripts/ctest.sh $(BUILD) --output-on-failure -j $(JOBS) -LE kafka
	JOBS=$(JOBS) bash scripts/blas_matrix.sh $(BUILD)
	bash scripts/ctest.sh $(BUILD)/asan --output-on-failure -j $(JOBS) -LE 'noasan|kafka'
	bash scripts/ctest.sh $(BUILD)/tsan --output-on-failure -j $(JOBS) -L threads
	@$(MAKE) --no-print-directory format-check

# The real-Kafka tier (needs Java 17 and Maven; Kafka itself is fetched once
# through Maven into ~/.cache/streamrec): a 3-node Apache Kafka on loopback,
# the integration tests and interop scripts against it, then the failure
# tests of tests/kafka/ (scripts/test-kafka.sh).
test-kafka: build
	bash scripts/test-kafka.sh $(BUILD) $(JOBS)

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

metrics-doc: build
	$(BUILD)/streamrec config --metrics-markdown > docs/METRICS.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Names the files clang-format would change, and shows the first changes.
format-check: deps
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do \
	  clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then \
	  echo "format-check: $$(echo "$$bad" | wc -l) file(s) not clang-formatted (make format):"; \
	  echo "$$bad" | sed 's/^/  /'; clang-format --dry-run --Werror $$bad 2>&1 | head -n 30; exit 1; \
	fi; echo "format-check: $$(git ls-files '*.c' '*.h' | wc -l) C files clang-formatted"

clean:
	rm -rf $(BUILD)
