# herald — run "make help" for the targets.
GO ?= go
FUZZTIME ?= 20s

.PHONY: help build run sandbox test testdeps lint bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build ./herald
	$(GO) build -o herald ./cmd/herald

run: ## run herald on :8080 with embedded defaults (the built-in sandbox as its partner)
	$(GO) run ./cmd/herald serve --log-format text

sandbox: ## run the partner simulator on 127.0.0.1:9025 (HTTP) and 127.0.0.1:2525 (SMTP)
	$(GO) run ./cmd/herald sandbox --log-format text

test: testdeps ## run every test with the race detector, then every benchmark once (queries over 100,000 events)
	$(GO) test -race -count=1 ./...
	HERALD_BENCH_EVENTS=100000 $(GO) test -run '^$$' -bench . -benchtime 1x ./...

testdeps: ## install libhoney-js for the compatibility test (skipped without Node.js)
	@if command -v npm >/dev/null 2>&1 && [ ! -d server/testdata/libhoney-js/node_modules ]; then \
	  npm ci --no-audit --no-fund --prefix server/testdata/libhoney-js; \
	fi

lint: ## go vet, gofmt and staticcheck
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt would change the files above"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: ## run the benchmarks: sandbox vs bare handler; pipeline vs River; ingest; queries over 10M events vs hand-written SQL; 1,000 triggers
	$(GO) test -run '^$$' -bench . -benchmem ./sandbox
	$(GO) test -run '^$$' -bench 'Pipeline|RiverNoop' -benchtime 2000x ./cmd/herald
	$(GO) test -run '^$$' -bench 'IngestBatch' -benchtime 10000x ./cmd/herald
	$(GO) test -run '^$$' -bench 'Query' -benchtime 50x ./eventstore
	$(GO) test -run '^$$' -bench 'Triggers' -benchtime 3x ./eventstore

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: ## remove the built binary
	rm -f herald
