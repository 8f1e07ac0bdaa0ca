# ksvla.lightagent — build, test and package the collection.
SHELL := /bin/bash
GO ?= go
VERSION := $(shell awk '/^version:/ {print $$2}' galaxy.yml)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
COLLECTION_DIR := build/ansible_collections/ksvla/lightagent
# Controller platforms the tarball carries a module binary for (binaries/ksvla_<os>_<arch>).
# darwin/amd64 is left out: with it the tarball measured 20.7 MB (15.5 MB without it, later, as the
# binary grew), over Galaxy's 20 MB read in decimal; add it for an own build with
# `make collection PLATFORMS="linux/amd64 darwin/amd64"`.
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64
FUZZTIME ?= 5s

.PHONY: changelog all build bin-modules bin-lab docs deps test unit e2e fuzz vet fmt-check lint collection dist demo bench bench-full bench-runner soak clean

all: build docs

## build: the multi-call module binary (bin/ksvla, linked from library/) and the lab
build: bin-modules bin-lab

# The modules are the registry's (modules/modules.go) as `bin/ksvla list` prints them: a link in
# library/ for each; a module no longer registered leaves neither its link nor its docs.
bin-modules:
	$(GOBUILD) -o bin/ksvla ./cmd/ksvla
	@set -eo pipefail; mods=$$(bin/ksvla list | sed 's/.*\.//'); [ -n "$$mods" ]; \
	  for m in $$mods; do ln -sfn ../bin/ksvla library/$$m; done; \
	  for f in library/*; do m=$${f#library/}; if ! grep -qxF "$${m%.yml}" <<<"$$mods"; then rm -f "$$f"; fi; done
	@bash tests/stage-collection.sh bin/ksvla collections

bin-lab:
	$(GOBUILD) -o bin/ksvla-lab ./cmd/ksvla-lab

## docs: regenerate library/<module>.yml and docs/modules/<module>.md from the option specs and
## meta/runtime.yml's plugin_routing from the registry
docs: bin-modules
	bin/ksvla docs library docs/modules
	bin/ksvla runtime meta/runtime.yml
	@bash tests/stage-collection.sh bin/ksvla collections  # again: with the new routing

## changelog: check changelogs/ and render CHANGELOG.rst (a release: go run ./cmd/ksvla-changelog release X.Y.Z)
changelog:
	$(GO) run ./cmd/ksvla-changelog render

## deps: install what the tests need (ansible-core, openssh-client) when missing
deps:
	@bash tests/deps.sh

## test: everything CI runs
test: deps vet fmt-check lint unit e2e fuzz

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v /tests$$)

## e2e: real ansible-playbook runs against the lab
e2e: build
	$(GO) test -count=1 -timeout 45m ./tests/...

## fuzz: each fuzz target for a short bounded time
fuzz:
	@bash tests/fuzz.sh $(FUZZTIME)

## lint: ansible-lint (production profile) on playbooks/, ansible-test sanity (offline tests) and
## ansible-doc on the staged collection
lint: deps bin-modules
	@bash tests/lint.sh bin/ksvla

## soak: kill upgrade.yml at every step on a lab, rerun, report how many kill points converged
soak: deps
	$(GO) test -tags soak -run Soak -timeout 60m -v ./tests/

## collection: stage ansible_collections/ksvla/lightagent with a module binary per platform in
## PLATFORMS and build the tarball (docs come from this machine's bin/ksvla, whatever PLATFORMS holds)
collection: docs
	rm -rf build && mkdir -p dist build/binaries
	@for p in $(PLATFORMS); do os=$${p%/*} arch=$${p#*/}; echo "build ksvla_$${os}_$${arch}"; \
	  GOOS=$$os GOARCH=$$arch $(GOBUILD) -o build/binaries/ksvla_$${os}_$${arch} ./cmd/ksvla || exit 1; done
	bash tests/stage-collection.sh bin/ksvla build --copy build/binaries
	cd $(COLLECTION_DIR) && ansible-galaxy collection build --force --output-path $(CURDIR)/dist
	cp dist/ksvla-lightagent-$(VERSION).tar.gz dist/ksvla-lightagent.tar.gz

## dist: static binaries for linux/amd64 and linux/arm64
dist:
	mkdir -p dist
	GOOS=linux GOARCH=amd64 $(GOBUILD) -o dist/ksvla_linux_amd64 ./cmd/ksvla
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o dist/ksvla_linux_arm64 ./cmd/ksvla

## demo: the whole upgrade in the lab, with the fleet before and after
demo: deps build
	@bash scripts/demo.sh

## bench: the benchmark suite against peers (unattended, < 15 min; CI does not run it):
## writes bench/RESULTS.md and bench/results.json
bench: bench-runner
	bench/.bin/runner -root . -out bench -profile quick

## bench-full: adds the 16k-VM lab, vmware_vm_info at 4k VMs, the 1 GiB image and the
## 64-host upgrades (about an hour): writes bench/RESULTS-full.md and bench/results-full.json
bench-full: bench-runner
	bench/.bin/runner -root . -out bench -profile full

bench-runner: bin-modules
	@bash bench/deps.sh
	$(GO) build -o bench/.bin/runner ./bench/runner

clean:
	rm -rf bin dist build .lab
