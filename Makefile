# The two commands a fresh machine needs (see README.md).
.PHONY: up down test lint stack-up stack-down

## make up: build and start the whole platform on this machine; prints where it answers
up:
	@scripts/up.sh

## make down: stop what `make up` started (the data stays)
down:
	@scripts/up.sh stop

## make test: install what is missing, start an isolated real stack, run every test, stop it
test:
	@scripts/test.sh

## make lint: formatting and clippy, as CI's reviewers expect
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## make stack-up / stack-down: a long-lived development stack for running tests by hand
stack-up:
	@scripts/stack.sh install
	@scripts/stack.sh start --dir /var/tmp/protostar-dev-$$(id -u)
	@echo "load it with: set -a; . /var/tmp/protostar-dev-$$(id -u)/env; set +a"

stack-down:
	@scripts/stack.sh stop --dir /var/tmp/protostar-dev-$$(id -u)
