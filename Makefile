# edged build, test and packaging entry points. `make help` lists them.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The test kube-apiserver (a nested module, see test/apiserver/README.md).
APISERVER := test/apiserver/bin/testapiserver
# Debian versions must start with a digit.
DEBVERSION ?= 0.1.0~git$(COMMIT)
TESTFLAGS ?= -count=1 -timeout 25m
# The .deb's architecture: amd64 or arm64 (the reference edge hosts are Raspberry Pis).
# edged is pure Go, so any host cross-builds it.
ARCH      ?= $(shell $(GO) env GOARCH)

.PHONY: help build test unit bench bench-failover lint fuzz testapiserver promtool lab deb install-test clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/edged
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/edged ./cmd/edged

testapiserver: ## build the test kube-apiserver once per machine (cold ~5 min)
	test/apiserver/build.sh

promtool: ## build Prometheus's promtool and the PromQL checker for the monitoring tests once (cold ~5 min)
	test/promtool/build.sh

test: testapiserver promtool ## the whole suite: unit, lab (netns, haproxy), apiserver and raft tests (root)
	$(GO) test $(TESTFLAGS) ./...
	cd packaging && $(GO) test -count=1 ./...

unit: ## only the tests that need neither root nor external binaries
	$(GO) test -short -count=1 ./...

bench: ## benchmarks (allocator, raft, haproxy)
	$(GO) test -run '^$$' -bench . -benchmem ./lbpool/...
	$(GO) test -run '^$$' -bench . -benchtime 20x ./raft/

bench-failover: testapiserver ## client gap after faults, edged vs keepalived, in the netns lab (root, ~15 min)
	$(GO) test -run '^$$' -bench Failover -benchtime 20x -timeout 60m ./test/failover/

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run every fuzz target for 20s each
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$p || exit 1; done; done

lab: ## the main job: the whole system in a network-namespace lab (root)
	scripts/lab.sh

deb: ## build dist/edged_<version>_<ARCH>.deb (make deb ARCH=arm64; nfpm as a library, see packaging/)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux_$(ARCH)/edged ./cmd/edged
	cd packaging && VERSION=$(DEBVERSION) ARCH=$(ARCH) $(GO) run . -spec nfpm.yaml -out ../dist

install-test: testapiserver ## the real install: apt + systemctl in booted Debian containers (root, systemd-nspawn)
	EDGED_INSTALL_TEST=1 $(GO) test -count=1 -timeout 30m -v -run TestInstall ./test/install/

clean: ## remove build outputs
	rm -rf bin dist
