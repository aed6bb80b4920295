# fs_spark: `make setup` once, then `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JARS := .jars

.PHONY: setup venv jars browser packages test test-fast lint bench quickstart clean

setup: venv jars browser packages

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

jars: $(JARS)/.fetched $(JARS)/s3/.fetched $(JARS)/fs_spark-jvm.jar $(JARS)/kafka-broker/.fetched

# Delta's jars and Spark's Kafka connector with its client: Scala, ANTLR, compression and
# logging come with pyspark.
SPARK_JARS := delta-spark_2.13,delta-storage,spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2
$(JARS)/.fetched: build/jars-pom.xml
	mvn -q -f build/jars-pom.xml dependency:copy-dependencies \
		-DincludeArtifactIds=$(SPARK_JARS) -DoutputDirectory=$(CURDIR)/$(JARS)
	touch $@

# S3A (hadoop-aws at pyspark's Hadoop version) and the AWS SDK modules it loads, for s3a:// roots;
# what pyspark already ships is left out.
S3_PROVIDED := io.netty,org.apache.httpcomponents,commons-codec,commons-logging,org.slf4j
$(JARS)/s3/.fetched: build/s3-jars-pom.xml
	mvn -q -f build/s3-jars-pom.xml dependency:copy-dependencies \
		-DexcludeGroupIds=$(S3_PROVIDED) -DoutputDirectory=$(CURDIR)/$(JARS)/s3
	touch $@

# A Kafka broker (KRaft) for the streaming tests, on a class path of its own.
$(JARS)/kafka-broker/.fetched: build/kafka-broker-pom.xml
	mvn -q -f build/kafka-broker-pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JARS)/kafka-broker
	touch $@

# fs_spark's own JVM classes (the point-in-time merge, the S3 log store), compiled against
# pyspark's, Delta's and S3A's jars.
JVM_SOURCES := $(wildcard jvm/fs_spark/*.java)
$(JARS)/fs_spark-jvm.jar: $(JVM_SOURCES) $(VENV)/.installed $(JARS)/.fetched $(JARS)/s3/.fetched
	rm -rf build/jvm-classes && mkdir -p build/jvm-classes $(JARS)
	javac --release 17 -Xlint:all,-path -Werror -cp "$$($(PY) -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')/*:$(JARS)/*:$(JARS)/s3/*" \
		-d build/jvm-classes $(JVM_SOURCES)
	jar cf $@ -C build/jvm-classes .
	rm -rf build/jvm-classes

# A headless browser for the lineage picture's test: Debian's chromium.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# Debian's packages the tests and benchmarks run: a Redis server for the online store, wrk (the
# feature server's load generator), a Prometheus Pushgateway for the batch jobs' metrics, and
# Graphviz, which lays out the lineage picture. The tests start their own servers on free ports.
PACKAGES := redis-server wrk prometheus-pushgateway graphviz
packages:
	@command -v redis-server >/dev/null && command -v wrk >/dev/null && command -v prometheus-pushgateway >/dev/null && \
		command -v dot >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(PACKAGES); }

# The whole suite (CI); the slowest tests are listed at the end.
test: setup
	$(PY) -m pytest -q tests --durations=15

# Everything but the tests marked slow (spark-submit, clusters, subprocesses, browsers).
test-fast: setup
	$(PY) -m pytest -q tests -m "not slow" --durations=10

# Lint and format (ruff) and types (mypy) of the package.
lint: venv
	$(VENV)/bin/ruff check fs_spark
	$(VENV)/bin/ruff format --check fs_spark
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench.ingest
	$(PY) -m bench.pit
	$(PY) -m bench.lineage
	$(PY) -m bench.drift
	$(PY) -m bench.cli
	$(PY) -m bench.online
	$(PY) -m bench.local_read
	$(PY) -m bench.search
	$(PY) -m bench.stream
	$(PY) -m bench.replicate
	$(PY) -m bench.observability

quickstart: setup
	$(PY) jobs/quickstart.py --root ./fs_store

clean:
	rm -rf $(VENV) $(JARS) fs_store .pytest_cache
