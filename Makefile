# replication-manager-pro: build, test, benchmark, demo.
GO      ?= go
BIN     := bin/replication-manager-pro
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X replication-manager-pro/internal/version.Version=$(VERSION)
# Tests start real mariadbd processes; keep packages from fighting over 2 cores.
TESTFLAGS ?= -count=1 -p 2 -timeout 15m

.PHONY: all build deps test test-short bench demo demo-slapos lint fuzz clean install

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/replication-manager-pro

# install lays out what SlapOS's repman recipe expects of a replication-manager build: the
# binary under both names (bin/replication-manager is what its wrapper runs), and share/ and
# dashboard/, which it rsyncs into the partition (--monitoring-sharedir, --http-root). The
# web UI is also embedded in the binary: dashboard/ holds the same files.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share $(DESTDIR)$(PREFIX)/dashboard
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/replication-manager-pro
	ln -sf replication-manager-pro $(DESTDIR)$(PREFIX)/bin/replication-manager
	install -m 0644 web/static/* $(DESTDIR)$(PREFIX)/dashboard/
	install -m 0644 docs/configuration.md docs/compat.md $(DESTDIR)$(PREFIX)/share/

# Debian packages the tests need (MariaDB, HAProxy, sysbench, Chromium...), installed when missing.
deps:
	@./scripts/install-deps.sh

test: deps build
	$(GO) test $(TESTFLAGS) ./...

# Pure packages only: no mariadbd needed.
test-short:
	$(GO) test -count=1 -short ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# Short fuzz runs of every fuzz target (the seed corpus also runs in 'make test').
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzHostPortRoundTrip -fuzztime 20s ./ipv6
	$(GO) test -run '^$$' -fuzz FuzzBindListRoundTrip -fuzztime 20s ./ipv6
	$(GO) test -run '^$$' -fuzz FuzzParseRoundTrip -fuzztime 20s ./gtid
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 20s ./config
	$(GO) test -run '^$$' -fuzz FuzzActionInput -fuzztime 20s ./api
	$(GO) test -run '^$$' -fuzz FuzzParseRequest -fuzztime 20s -fuzzminimizetime 5s ./orchestrator/slapos
	$(GO) test -run '^$$' -fuzz FuzzReference -fuzztime 20s ./tenant

demo:
	@./scripts/demo.sh

# The seed's SlapOS request (testdata) and one shared instance on simulated SlapOS computers
# (network namespaces when root, loopback otherwise): prints the UI, the published parameters
# and the tenant's URL; Ctrl-C stops and removes everything (docs/slapos.md).
demo-slapos: build
	@./scripts/install-deps.sh --demo
	$(BIN) slapos simulate --parameters testdata/slapos-request-cluster1.json \
		--shared-instances testdata/slapos-shared-instances.json --dir $(or $(DIR),slapos-simulation)

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
