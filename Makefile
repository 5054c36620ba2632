# fwdd — build, test, benchmark, demo. Root is needed for the AF_XDP,
# namespace and demo parts; everything else runs as any user.

GO        ?= go
BIN       := bin
PKGS      := ./...
# Packages with goroutines that share memory: always also run under -race.
RACE_PKGS  = $(shell $(GO) list ./... | grep -E '/(ring|mbuf|pmd|internal|fib|lltable|txq|fwd|ctl)(/|$$)')
TESTFLAGS ?= -count=1 -timeout 20m
BENCHTIME ?= 1s

.PHONY: all build test test-unit test-race bench bench-micro demo vet fmt fmt-check clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

fmt-check:
	@out=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# make test: vet, unit and integration tests (root-only ones skip with a
# reason when not root), then the concurrent packages again under -race.
# -tags mbufcheck turns on the mbuf use-after-free checks.
test: fmt-check vet test-unit test-race

test-unit:
	$(GO) test $(TESTFLAGS) -tags mbufcheck $(PKGS)

test-race:
	$(GO) test $(TESTFLAGS) -race -tags mbufcheck $(RACE_PKGS)

# Micro benchmarks of every package (each next to its baseline).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 3 $(PKGS)

bench: bench-micro

demo: build
	@bash scripts/demo.sh

clean:
	rm -rf $(BIN)
