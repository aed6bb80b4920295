# fs_spark: `make setup` once, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars

.PHONY: setup venv jars browser test bench quickstart clean

setup: venv jars browser

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

jars: $(JARS)/.fetched

# Delta's own jars only: Scala and ANTLR come with pyspark.
$(JARS)/.fetched: build/jars-pom.xml
	mvn -q -f build/jars-pom.xml dependency:copy-dependencies \
		-DincludeGroupIds=io.delta -DoutputDirectory=$(CURDIR)/$(JARS)
	touch $@

# A headless browser for the lineage picture's test: Debian's chromium.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m bench.ingest
	$(PY) -m bench.pit
	$(PY) -m bench.lineage
	$(PY) -m bench.drift

quickstart: setup
	$(PY) jobs/quickstart.py --root ./fs_store

clean:
	rm -rf $(VENV) $(JARS) fs_store .pytest_cache
