GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: all deps mods build test test-vm test-cold lint fuzz bench demo clean

all: build

deps:
	./scripts/deps.sh

# The Go modules the build and the tests import, fetched with retries.
mods:
	GO=$(GO) ./scripts/gomod.sh

build:
	$(GO) build -o bin/nixbook ./cmd/nixbook
	@if [ -d cmd/nixbook-sim ]; then $(GO) build -o bin/nixbook-sim ./cmd/nixbook-sim; fi

test: deps mods lint
	NIXBOOK_HEAVY_TESTS=1 $(GO) test -count=1 -timeout 60m ./...

# The simulated fleet's vm hosts (QEMU machines with real ZFS, see
# sim/README.md) and the default install path end to end on them; make test
# runs them too.
test-vm: deps mods
	NIXBOOK_HEAVY_TESTS=1 $(GO) test -count=1 -timeout 40m -run 'TestVM' ./sim/vm/ ./sim/ ./e2e/

# make test with nixbook's caches empty, as on a fresh machine (CI's case);
# the machine's caches are left alone.
test-cold:
	GO=$(GO) ./scripts/test-cold.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# fuzz runs each Fuzz* function of every package for FUZZTIME; go test
# -fuzz takes one target at a time, so they are listed per package.
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$fn"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: deps build
	./bench/run.sh

demo: deps build
	./scripts/demo.sh

clean:
	rm -rf bin .nixbook
