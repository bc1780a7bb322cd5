# kiln: the two quick-start commands and their parts.
#   make run   - install packages, build, run the main job on the default model
#   make test  - install packages, build, run ctest (unit + model), the
#                ASan/UBSan build of the unit tests (with the 30-second,
#                16-client daemon load test), a short fuzz run, and the
#                official OpenAI Python client (and for images webuiapi)
#                against `kiln serve`
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 10

.PHONY: all deps build run test test-main test-asan test-fuzz test-clients clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

run: build
	bash scripts/run-default.sh $(BUILD)/kiln

test: test-main test-asan test-fuzz test-clients

test-main: build
	ctest --test-dir $(BUILD) -L 'unit|model' --output-on-failure -j $(JOBS)

test-asan: deps
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKILN_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  KILN_WORKER_LOAD_SECONDS=30 ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

test-fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKILN_FUZZ=ON \
	  -DKILN_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure

# The openai package (PyPI, into a venv under the build folder) talks to
# kiln serve running the default model; then webuiapi (AUTOMATIC1111's
# client) and openai talk to kiln serve running the tiny SD test model.
test-clients: build
	bash tests/integration/run_openai_client.sh $(BUILD)/kiln $(BUILD)/openai-venv -- \
	  -m models/fortune-llama-q8_0.gguf
	bash tests/integration/run_image_clients.sh $(BUILD)/kiln $(BUILD)/image-clients-venv

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
