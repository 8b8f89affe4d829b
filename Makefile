# The two commands: `make run` (a working store on this machine) and `make test`
# (every gate and test). Both install what they need on a fresh Debian machine.
SHELL   := /bin/bash
GO      ?= go
MODULE  := github.com/offline-loyalty/terminal
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X $(MODULE)/internal/buildstamp.Version=$(VERSION) \
           -X $(MODULE)/internal/buildstamp.Commit=$(COMMIT) \
           -X $(MODULE)/internal/buildstamp.Date=$(DATE)
GOFILES  = $(shell find . -name '*.go' -not -path './bin/*' -not -path './dist/*')
export CGO_ENABLED := 1
# Every go command builds with -trimpath, as releases must: go vet,
# staticcheck, make build, build.sh and the binaries the tests build then
# share one compile of each package (Fyne's cgo is minutes on a cold cache).
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)

.PHONY: all deps deps-demo build run test lint vet bench fuzz package clean

all: build

deps:
	@scripts/deps.sh

# What building and running the demo need, and no more.
deps-demo:
	@scripts/deps.sh demo

build: deps-demo
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

run: build
	@scripts/run-demo.sh

# What IT installs, into dist/: the Debian packages of pos-agent and
# headoffice, and the Windows installer (packaging/README.md). SIGN_CERT and
# SIGN_KEY, when set, sign the Windows programs and installer.
package: deps
	VERSION="$(VERSION)" LDFLAGS="$(LDFLAGS)" packaging/build.sh

# Every quality gate, then every test with the race detector.
test: deps lint
	$(GO) test -race -count=1 -timeout 14m ./...

lint: deps
	@bad=$$(gofmt -l $(GOFILES)); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	bin/staticcheck ./...
	shellcheck scripts/*.sh .ci/run packaging/build.sh packaging/windows/sign.sh \
	  packaging/linux/*/postinst packaging/linux/*/prerm packaging/linux/*/postrm

# Benchmarks compare against the physical limit measured in the same run;
# sqlitebench builds in SQLite, the standard alternative the till's ledger is
# measured against (agent/localapi/bench_sqlite_test.go).
bench: deps
	$(GO) test -tags sqlitebench -run '^$$' -bench . -benchtime 3s ./...

# A short fuzzing pass over every fuzz target (FUZZTIME each). Minimising an
# input is cut to 5 s: the data-file targets take whole files of several pages.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
