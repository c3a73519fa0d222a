# `make`: the release binaries, linked where the course's scripts look for
# them (bin/kvsserver, bin/kvsclient), so its run-cluster.sh and
# report-tput.py run kvlab unchanged. kvlab's own ./run-cluster.sh builds
# for itself and does not need this.
#
#   make                  cargo build --release, then the links
#   make links            only the links (binaries already built)
#   make PROFILE=dev      a debug build instead
#   make BIN=DIR          links in DIR instead of bin/

PROFILE ?= release
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
BIN ?= bin
OUT := $(if $(filter dev test,$(PROFILE)),debug,$(PROFILE))
# Absolute: a shared home has the same path on every node.
BUILT := $(abspath $(TARGET_DIR))/$(OUT)

.PHONY: all build links clean-links

all: build links

build:
	cargo build --profile $(PROFILE) -p kv-server -p kv-client

links:
	@test -x $(BUILT)/kv-server && test -x $(BUILT)/kv-client || \
		{ echo "make: no kv-server/kv-client in $(BUILT): run make (or make build) first" >&2; exit 1; }
	mkdir -p $(BIN)
	ln -sfn $(BUILT)/kv-server $(BIN)/kvsserver
	ln -sfn $(BUILT)/kv-client $(BIN)/kvsclient

clean-links:
	rm -f $(BIN)/kvsserver $(BIN)/kvsclient
