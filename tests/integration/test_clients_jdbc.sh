#!/bin/bash
# Client conformance, JDBC (pgjdbc from libpostgresql-jdbc-java):
# prepareThreshold=1 with binary transfer, a small statement cache (Close),
# fetch-size cursors (two portals at once), batches, savepoints, CopyManager,
# Statement.cancel(), notifications, large objects: the same transcript directly
# and through `hoopctl gateway`, in clear and over TLS (clients/lib.sh). The
# scenario is compiled here with javac.
source "$(dirname "$0")/lib/harness.sh"
source "$(dirname "$0")/lib/gateway.sh"
source "$(dirname "$0")/clients/lib.sh"

JDBC_JAR=/usr/share/java/postgresql.jar
[[ -r $JDBC_JAR ]] || fail "$JDBC_JAR missing (.ci/deps installs libpostgresql-jdbc-java)"
mkdir -p "$HARNESS_TMP/java"
javac -nowarn -encoding UTF-8 -cp "$JDBC_JAR" -d "$HARNESS_TMP/java" "$CLIENTS_DIR/java/Scenario.java" \
  || fail "javac failed"
pg_start
clients_conformance jdbc java -Duser.timezone=UTC -Dfile.encoding=UTF-8 -Xmx512m \
  -cp "$HARNESS_TMP/java:$JDBC_JAR" Scenario
echo "JDBC conformance ok"
