# The two commands of the README, plus a few conveniences.
#   make demo   set up (as root), build, run `cairn demo`
#   make test   set up (as root), build, run every test
.PHONY: demo test setup build asan fuzz bench clean

setup:
	./scripts/setup

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release

demo: build
	./build/release/bin/cairn demo

test: build
	ctest --preset release

asan: setup
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	ctest --preset asan

bench: build
	./build/release/bin/cairn bench sketch

clean:
	rm -rf build
