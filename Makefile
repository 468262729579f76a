# Two entry points that work on a fresh Debian machine: `make suite` and `make test`.
# Each first installs the system packages benchbench needs (only when some are missing).

PACKAGES := libopenblas-dev libsqlite3-dev zlib1g-dev gnuplot-nox dataset-fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build release test fuzz suite smoke kernels clean

deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	swift build

release: deps
	swift build -c release

test: deps
	swift test

# The parsers of user input (IDX files, their gzip path, suite files) against 100,000 seeded
# mutations each (`make test` runs 2,000).
fuzz: deps
	BENCHBENCH_FUZZ_ITERATIONS=100000 swift test --filter FuzzTests

# The main job: the default suite (release build), stored in benchbench.sqlite, then its report.
# The report is written even when a trial failed (failures are part of it); the exit status is the suite's.
suite: release
	@.build/release/benchbench suite default; status=$$?; \
	.build/release/benchbench report latest --suite default --out reports/latest; \
	exit $$status

smoke: release
	.build/release/benchbench suite smoke

kernels: release
	.build/release/benchbench kernels

clean:
	rm -rf .build
