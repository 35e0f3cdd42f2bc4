# Conclave build, test and tooling entry points. See README.md.

GO          ?= go
PKGS        ?= ./...
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s
BENCHCOUNT  ?= 5
SEEDS       ?= 2000
STATICCHECK_VERSION ?= v0.8.2
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
BIN         ?= bin

.PHONY: all build run test bench fuzz lint sim vectors interop testnet tools clean

all: build

## build: compile every package and the conclave binary into ./bin
build:
	$(GO) build $(PKGS)
	@if [ -d cmd/conclave ]; then mkdir -p $(BIN) && $(GO) build -o $(BIN)/conclave ./cmd/conclave; fi

## run: build, then start a node (daemon) on its embedded defaults; it prints what to do next
run: build
	@echo "Starting bin/conclave daemon (data in \$$CONCLAVE_HOME or ~/.local/share/conclave). In another terminal: export PATH=\"$(CURDIR)/$(BIN):\$$PATH\""
	@exec $(BIN)/conclave daemon

## vectors: the official MLS test vectors, one summary line per file
vectors:
	@if [ -d mls ]; then $(GO) test -count=1 -v -run 'Vector' ./mls/ | grep -E '^\s*.*vectors [^ ]+: [0-9]+/[0-9]+ cases passed|^(ok|FAIL|---)' ; fi

## test: the whole test suite (what CI runs)
test:
	$(GO) test -count=1 -timeout 30m $(PKGS)

## bench: every benchmark; BENCHTIME and BENCHCOUNT tune it, PKGS narrows it
## (the gossip benchmarks build their own hosts: use e.g. `make bench PKGS=./gossip/ BENCHTIME=500x`)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(PKGS)

## testnet: five nodes on loopback in one process to rehearse partitions (docs/testnet.md)
testnet: build
	./bin/conclave testnet up -n 5

## fuzz: run every fuzz target for FUZZTIME each (Go runs one target at a time)
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for fn in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' $$dir/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do \
			echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## sim: the consensus simulator over SEEDS seeds
sim:
	$(GO) test -count=1 -timeout 60m -run 'TestSimulation' ./consensus/... -args -seeds $(SEEDS)

## interop: the MLS working group's interop scenarios (testdata/interop) for every cipher suite,
## against two loopback instances of the mls-interop server; INTEROP_ARGS e.g. "-suite 1 -scenario commit"
interop:
	$(GO) run ./cmd/mls-interop-driver $(INTEROP_ARGS)

## lint: gofmt, go vet and staticcheck
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)

tools:
	@if ! [ -x $(GOBIN)/staticcheck ] || ! $(GOBIN)/staticcheck -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION:v%=%)'; then \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

clean:
	rm -rf $(BIN)
