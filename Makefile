GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: all deps build test lint fuzz bench demo clean

all: build

deps:
	./scripts/deps.sh

build:
	$(GO) build -o bin/nixbook ./cmd/nixbook
	@if [ -d cmd/nixbook-sim ]; then $(GO) build -o bin/nixbook-sim ./cmd/nixbook-sim; fi

test: deps lint
	$(GO) test -count=1 -timeout 60m ./...

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
