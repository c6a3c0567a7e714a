# The two commands of the README. Both are idempotent and run as root on a fresh Debian machine.
#   make demo  - install, build, bring up a lab (1 manager, 2 workers) and deploy `web` (3 replicas)
#   make test  - install, build, lint, and run the whole suite (unit + e2e on real runc)
.PHONY: deps build demo test lint unit e2e bench clean

deps:
	bash scripts/install-deps.sh

build: deps
	npm run build --silent

demo: build
	bash deploy/demo.sh

lint: deps
	npm run lint --silent

unit: build
	npx vitest run --project unit

e2e: build
	npx vitest run --project e2e

test: build lint
	rm -f .test-results.json
	npx vitest run --reporter=default --reporter=json --outputFile.json=.test-results.json; status=$$?; \
	  if [ -f .test-results.json ]; then node scripts/test-summary.mjs .test-results.json; fi; exit $$status

bench: build
	npm run bench:start --silent

clean:
	rm -rf dist .test-results.json
