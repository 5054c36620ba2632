# fwdd — build, test, benchmark, demo. Root is needed for the AF_XDP,
# namespace and demo parts; everything else runs as any user.

GO        ?= go
BIN       := bin
PKGS      := ./...
# Packages with goroutines that share memory: always also run under -race.
RACE_PKGS  = $(shell $(GO) list ./... | grep -E '/(ring|mbuf|pmd|internal|fib|lltable|txq|fwd|ctl|lcp|vnet|events|capture|trace|nlmirror)(/|$$)')
TESTFLAGS ?= -count=1 -timeout 20m
BENCHTIME ?= 1s

.PHONY: all build test test-unit test-race bench bench-micro bench-e2e demo demo-routing vet fmt fmt-check mod-check clean soak

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w .

# go.mod tidy: direct requirements not marked indirect, nothing unused.
mod-check:
	$(GO) mod tidy -diff

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

# make soak (root): traffic through fwdd on AF_XDP for $(SOAK) while a
# chaos loop flaps, deletes and re-creates links, reloads, churns routes
# and floods/malforms from an on-link host (soak/doc.go). make test runs a
# 60 s version. The figures go to bin/soak-report.txt (see RELIABILITY.md).
SOAK ?= 10m
soak:
	@mkdir -p $(BIN)
	FWDD_SOAK=$(SOAK) FWDD_SOAK_REPORT=$(CURDIR)/$(BIN)/soak-report.txt $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./soak/
	@cat $(BIN)/soak-report.txt

# Micro benchmarks of every package (each next to its baseline).
bench-micro:
	@mkdir -p $(BIN) docs/img
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 3 $(PKGS) | tee $(BIN)/bench-micro.txt
	$(GO) run ./perf/benchreport -in $(BIN)/bench-micro.txt -md BENCHMARKS.md -svg docs/img/fib-vs-bart.svg

# End-to-end harness (root): gen → router → sink namespaces; Linux
# forwarding, the XDP-native forwarder and fwdd (once cmd/fwdd runs).
# About 5-10 minutes; E2EFLAGS=-quick for 1-2 minutes. Rewrites the
# "end to end" section of BENCHMARKS.md and docs/img/bench-e2e.svg.
E2EFLAGS ?=
bench-e2e:
	@mkdir -p $(BIN) docs/img
	$(GO) build -o $(BIN)/ ./cmd/fwdgen
	$(GO) build -o $(BIN)/bench-e2e ./perf/e2e
	@$(GO) build -o $(BIN)/ ./cmd/fwdd 2>/dev/null || echo "bench-e2e: cmd/fwdd does not build yet: the fwdd legs will be skipped"
	@$(GO) build -o $(BIN)/ ./cmd/fwdctl 2>/dev/null || true
	$(BIN)/bench-e2e -bin $(BIN) -benchmarks BENCHMARKS.md -svg docs/img/bench-e2e.svg $(E2EFLAGS)

# make bench: micro benchmarks, then the end-to-end harness where root is
# available.
bench: bench-micro
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) bench-e2e; else echo "bench: not root: skipping the end-to-end harness (sudo make bench-e2e)"; fi

demo: build
	@bash scripts/demo.sh

# BIRD over fwdd's kernel interfaces (root, bird2): eBGP routes into fwdd.
demo-routing: build
	@bash scripts/demo-routing.sh

clean:
	rm -rf $(BIN)
