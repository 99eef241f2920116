// Scenario.java — the conformance scenario for PostgreSQL JDBC (pgjdbc):
// server-side prepared statements from the first execution (prepareThreshold=1)
// with binary transfer, fetch-size cursors (Execute row limits), batches,
// savepoints, CopyManager both ways, Statement.cancel(), getNotifications();
// prints a JSON-lines transcript. Compiled by test_clients_jdbc.sh with javac.
import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.*;
import java.time.*;
import java.util.*;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;
import org.postgresql.largeobject.LargeObject;
import org.postgresql.largeobject.LargeObjectManager;
import org.postgresql.util.PSQLWarning;
import org.postgresql.util.PSQLException;
import org.postgresql.util.PGobject;

public class Scenario {
    static final String TAG = "jdbc";
    static final String UNICODE_TEXT = "Grüße, 日本語, emoji 😀, עברית, e\u0301, \u2603";
    static final int ROWS_BIG = 100000, COPY_ROWS = 10000, BIG_MD5_ROWS = 327680;
    static final String CHANNEL = "conf_chan";
    static final String SQL_BIG_RESULT = "select g, md5(g::text) from generate_series(1, " + ROWS_BIG + ") g order by g";
    static final String SQL_BIG_VALUE = "select string_agg(md5(g::text), '' order by g) from generate_series(1, " + BIG_MD5_ROWS + ") g";
    static final String SQL_COPY_CHECK = "select count(*), count(note), sum(n), md5(string_agg(id || ':' || coalesce(note, 'NULL'), '|' order by id)) from conf_copy";
    static final String SQL_WAIT_ACTIVE = "select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid()"
        + " and query like '%pg_sleep(30) /* " + TAG + " */%'";

    static Connection connect() throws SQLException {
        Map<String, String> env = System.getenv();
        Properties p = new Properties();
        p.setProperty("user", env.get("CONF_USER"));
        String pw = env.getOrDefault("CONF_PASSWORD", "");
        if (!pw.isEmpty()) p.setProperty("password", pw);
        p.setProperty("sslmode", env.getOrDefault("CONF_SSLMODE", "prefer"));
        p.setProperty("prepareThreshold", "1");
        // A small statement cache: statements are closed (Close message) and parsed again.
        p.setProperty("preparedStatementCacheQueries", "8");
        p.setProperty("ApplicationName", "conformance-jdbc");
        p.setProperty("connectTimeout", "20");
        String url = "jdbc:postgresql://" + env.get("CONF_HOST") + ":" + env.get("CONF_PORT") + "/" + env.get("CONF_DB");
        return DriverManager.getConnection(url, p);
    }

    // ---- transcript -------------------------------------------------------
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Boolean) return v.toString();
        if (v instanceof Integer || v instanceof Long) return v.toString();
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (b.length() > 1) b.append(", ");
                b.append(json(e.getKey().toString())).append(": ").append(json(e.getValue()));
            }
            return b.append("}").toString();
        }
        if (v instanceof List) {
            StringBuilder b = new StringBuilder("[");
            for (Object o : (List<?>) v) {
                if (b.length() > 1) b.append(", ");
                b.append(json(o));
            }
            return b.append("]").toString();
        }
        String s = v.toString();
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c == '\n') b.append("\\n");
            else if (c == '\t') b.append("\\t");
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static void emit(String step, Object... kv) {
        TreeMap<String, Object> m = new TreeMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        m.put("step", step);
        System.out.println(json(m));
        System.out.flush();
    }

    static Object canon(Object v) throws SQLException {
        if (v == null || v instanceof Boolean || v instanceof String) return v;
        if (v instanceof Short || v instanceof Integer || v instanceof Long) return ((Number) v).longValue();
        if (v instanceof BigDecimal) return "numeric:" + ((BigDecimal) v).toPlainString();
        if (v instanceof Double || v instanceof Float) return "float:" + v;
        if (v instanceof byte[]) return "bytes:" + hex((byte[]) v);
        if (v instanceof Array) {
            List<Object> l = new ArrayList<>();
            for (Object o : (Object[]) ((Array) v).getArray()) l.add(canon(o));
            return l;
        }
        if (v instanceof PGobject) return ((PGobject) v).getType() + ":" + ((PGobject) v).getValue();
        return v.getClass().getSimpleName() + ":" + v;
    }

    static List<Object> row(ResultSet rs) throws SQLException {
        List<Object> l = new ArrayList<>();
        for (int i = 1; i <= rs.getMetaData().getColumnCount(); i++) l.add(canon(rs.getObject(i)));
        return l;
    }

    static Map<String, Object> err(SQLException e) {
        TreeMap<String, Object> m = new TreeMap<>();
        m.put("sqlstate", e.getSQLState());
        if (e instanceof PSQLException && ((PSQLException) e).getServerErrorMessage() != null)
            m.put("message", ((PSQLException) e).getServerErrorMessage().getMessage());
        else
            m.put("message", e.getMessage());
        return m;
    }

    static void emitErr(String step, SQLException e, Object... kv) {
        List<Object> all = new ArrayList<>(Arrays.asList(kv));
        for (Map.Entry<String, Object> x : err(e).entrySet()) { all.add(x.getKey()); all.add(x.getValue()); }
        emit(step, all.toArray());
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x & 0xff));
        return s.toString();
    }

    static String sha256(String s) throws Exception {
        return hex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    }

    static Object one(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return canon(rs.getObject(1));
        }
    }

    static final class RowDigest {
        long count = 0;
        MessageDigest h;
        RowDigest() throws Exception { h = MessageDigest.getInstance("SHA-256"); }
        void add(ResultSet rs) throws SQLException {
            count++;
            h.update((json(row(rs)) + "\n").getBytes(StandardCharsets.UTF_8));
        }
        Object[] result() { return new Object[] {"rows", count, "sha256", hex(h.digest())}; }
    }

    static String copyEscape(Object v) {
        if (v == null) return "\\N";
        return v.toString().replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r");
    }

    static String copyText() {
        StringBuilder b = new StringBuilder();
        for (int i = 1; i <= COPY_ROWS; i++) {
            String note = i % 97 == 0 ? null : "row " + i + "\t\u00fc\\n\n" + "x".repeat(i % 13);
            b.append(i).append('\t').append(copyEscape(note)).append('\t').append(i * 7 % 1000).append('\n');
        }
        return b.toString();
    }

    // ---- steps --------------------------------------------------------------
    static void session(Connection c) throws Exception {
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("select pg_backend_pid(), current_setting('application_name'), current_database()")) {
            rs.next();
            emit("session", "pid_match", rs.getInt(1) == c.unwrap(PGConnection.class).getBackendPID(),
                 "application_name", rs.getString(2), "database", rs.getString(3));
        }
    }

    static void types(Connection c) throws Exception {
        String[] casts = {"int2", "int4", "int8", "numeric", "float8", "float4", "bool", "text", "text", "int4", "bytea",
                          "date", "timestamp", "timestamptz", "uuid", "jsonb", "int4[]", "text[]"};
        StringBuilder outer = new StringBuilder("select "), inner = new StringBuilder();
        for (int i = 1; i <= casts.length; i++) {
            outer.append(i > 1 ? ", " : "").append("v").append(i).append(", v").append(i).append("::text");
            inner.append(i > 1 ? ", " : "").append("?::").append(casts[i - 1]).append(" as v").append(i);
        }
        String sql = outer + " from (select " + inner + ") s";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int run = 0; run < 2; run++) {   // prepareThreshold=1: both runs use the named server statement
                int i = 1;
                ps.setShort(i++, (short) 12345);
                ps.setInt(i++, 2147483647);
                ps.setLong(i++, 9223372036854775807L);
                ps.setBigDecimal(i++, new BigDecimal("12345678901234567890.123456789"));
                ps.setDouble(i++, 3.5);
                ps.setFloat(i++, 0.25f);
                ps.setBoolean(i++, true);
                ps.setString(i++, "hello, world");
                ps.setNull(i++, Types.VARCHAR);
                ps.setNull(i++, Types.INTEGER);
                ps.setBytes(i++, new byte[] {0, 1, (byte) 0xfe, (byte) 0xff, '\'', '\\'});
                ps.setObject(i++, LocalDate.of(2024, 2, 29));
                ps.setObject(i++, LocalDateTime.of(2024, 2, 29, 12, 34, 56, 789000000));
                ps.setObject(i++, OffsetDateTime.of(2024, 2, 29, 12, 34, 56, 789000000, ZoneOffset.UTC));
                ps.setObject(i++, UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
                ps.setString(i++, "{\"a\": [1, 2, null], \"k\": \"v\"}");
                ps.setArray(i++, c.createArrayOf("int4", new Integer[] {1, null, 3}));
                ps.setArray(i++, c.createArrayOf("text", new String[] {"a", "b,c", null, "\"q\""}));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    List<Object> r = row(rs), values = new ArrayList<>(), text = new ArrayList<>();
                    for (int k = 0; k < r.size(); k++) (k % 2 == 0 ? values : text).add(r.get(k));
                    emit("types", "values", values, "server_text", text);
                }
            }
        }
    }

    static void bigResult(Connection c) throws Exception {
        c.setAutoCommit(false);
        RowDigest d = new RowDigest();
        try (PreparedStatement ps = c.prepareStatement(SQL_BIG_RESULT)) {
            ps.setFetchSize(7000);   // Execute with a row limit, PortalSuspended between batches
            try (ResultSet rs = ps.executeQuery()) { while (rs.next()) d.add(rs); }
        }
        c.commit();
        emit("big_result_fetch_size", d.result());
        // Two named portals open at once, read in turns, and a third statement
        // run between their fetches.
        RowDigest d1 = new RowDigest(), d2 = new RowDigest();
        long side = 0;
        try (PreparedStatement p1 = c.prepareStatement(SQL_BIG_RESULT);
             PreparedStatement p2 = c.prepareStatement("select g * 3, md5(g::text || 'x') from generate_series(1, 50000) g order by g");
             PreparedStatement p3 = c.prepareStatement("select ?::int4 + 1")) {
            p1.setFetchSize(1000);
            p2.setFetchSize(777);
            try (ResultSet r1 = p1.executeQuery(); ResultSet r2 = p2.executeQuery()) {
                boolean more1 = true, more2 = true;
                for (int i = 0; more1 || more2; i++) {
                    if (more1 && (more1 = r1.next())) d1.add(r1);
                    if (more2 && (more2 = r2.next())) d2.add(r2);
                    if (i % 5000 == 0) {
                        p3.setInt(1, i);
                        try (ResultSet r3 = p3.executeQuery()) { r3.next(); side += r3.getInt(1); }
                    }
                }
            }
        }
        c.commit();
        c.setAutoCommit(true);
        emit("interleaved_portals", "first", Arrays.asList(d1.result()), "second", Arrays.asList(d2.result()), "side_sum", side);
        d = new RowDigest();
        try (PreparedStatement ps = c.prepareStatement(SQL_BIG_RESULT + " limit ?")) {
            ps.setInt(1, ROWS_BIG);
            try (ResultSet rs = ps.executeQuery()) { while (rs.next()) d.add(rs); }
        }
        emit("big_result_buffered", d.result());
    }

    static void errors(Connection c) throws Exception {
        for (String sql : new String[] {"select 1/0", "selec 1", "select * from conf_no_such_table"}) {
            try (Statement st = c.createStatement()) {
                st.executeQuery(sql);
                emit("error_expected", "sql", sql, "got", "no error");
            } catch (SQLException e) {
                emitErr("error", e, "sql", sql);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("select 8 / ?::int4")) {
            for (int d : new int[] {0, 2, 0, 4}) {
                ps.setInt(1, d);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    emit("prepared_divide", "divisor", d, "value", rs.getInt(1));
                } catch (SQLException e) {
                    emitErr("prepared_divide", e, "divisor", d);
                }
            }
        }
        emit("reuse_after_error", "value", one(c, "select 42"));
        c.setAutoCommit(false);
        try { one(c, "select 1/0"); } catch (SQLException e) { emitErr("error_in_tx", e); }
        try { one(c, "select 2"); } catch (SQLException e) { emitErr("aborted_tx", e); }
        c.rollback();
        c.setAutoCommit(true);
        emit("reuse_after_rollback", "value", one(c, "select 43"));
        // Batches are sent pipelined (many Bind/Execute, one Sync).
        try (Statement st = c.createStatement()) { st.execute("create temp table conf_many (id int primary key, v text)"); }
        try (PreparedStatement ps = c.prepareStatement("insert into conf_many values (?, ?)")) {
            c.setAutoCommit(false);
            for (int id : new int[] {1, 2, 3, 1}) { ps.setInt(1, id); ps.setString(2, "v" + id); ps.addBatch(); }
            try { ps.executeBatch(); } catch (BatchUpdateException e) {
                SQLException next = e.getNextException() != null ? e.getNextException() : e;
                emitErr("batch_error", next);
            }
            c.rollback();
            for (int id = 1; id <= 1000; id++) { ps.setInt(1, id); ps.setString(2, "v" + id); ps.addBatch(); }
            int[] counts = ps.executeBatch();
            c.commit();
            c.setAutoCommit(true);
            emit("batch", "statements", counts.length, "rows", one(c, "select count(*) from conf_many"),
                 "md5", one(c, "select md5(string_agg(v, ',' order by id)) from conf_many"));
        }
    }

    static void transactions(Connection c) throws Exception {
        try (Statement st = c.createStatement()) { st.execute("create temp table conf_tx (id int, note text)"); }
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("insert into conf_tx values (?, ?)")) {
            ps.setInt(1, 1); ps.setString(2, "rolled back"); ps.executeUpdate();
            ps.setInt(1, 2); ps.setString(2, "also"); ps.executeUpdate();
            c.rollback();
            emit("tx_rollback", "rows_after_rollback", one(c, "select count(*) from conf_tx"));
            ps.setInt(1, 3); ps.setString(2, "kept"); ps.executeUpdate();
            Savepoint sp = c.setSavepoint("s1");
            ps.setInt(1, 4); ps.setString(2, "dropped"); ps.executeUpdate();
            try { one(c, "select 1/0"); } catch (SQLException e) { emitErr("tx_savepoint_error", e); }
            c.rollback(sp);
            c.commit();
        }
        c.setAutoCommit(true);
        emit("tx_savepoint", "ids", one(c, "select array_agg(id order by id) from conf_tx"));
    }

    static void notifications(Connection c) throws Exception {
        try (Connection listener = connect()) {
            try (Statement st = listener.createStatement()) { st.execute("listen " + CHANNEL); }
            Object notifierPid = one(c, "select pg_backend_pid()");
            try (Statement st = c.createStatement()) {
                st.execute("notify " + CHANNEL + ", 'hello \u2603'");
                c.setAutoCommit(false);
                st.execute("select pg_notify('" + CHANNEL + "', 'second')");
                st.execute("select pg_notify('" + CHANNEL + "', 'third, same tx')");
                c.commit();
                st.execute("select pg_notify('" + CHANNEL + "', 'rolled back')");
                c.rollback();
                c.setAutoCommit(true);
                st.execute("select pg_notify('" + CHANNEL + "', 'end')");
            }
            PGConnection pl = listener.unwrap(PGConnection.class);
            List<PGNotification> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60000;
            while (got.isEmpty() || !got.get(got.size() - 1).getParameter().equals("end")) {
                if (System.currentTimeMillis() > deadline) { emit("notify_timeout", "received", got.size()); System.exit(1); }
                PGNotification[] ns = pl.getNotifications(1000);
                if (ns != null) got.addAll(Arrays.asList(ns));
            }
            for (PGNotification n : got)
                emit("notification", "channel", n.getName(), "payload", n.getParameter(),
                     "pid_match", notifierPid.equals((long) n.getPID()));
        }
    }

    static void copy(Connection c) throws Exception {
        try (Statement st = c.createStatement()) { st.execute("create temp table conf_copy (id int primary key, note text, n int)"); }
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        String text = copyText();
        emit("copy_in", "rowcount", cm.copyIn("copy conf_copy from stdin", new StringReader(text)));
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(SQL_COPY_CHECK)) {
            rs.next();
            emit("copy_in_check", "values", row(rs));
        }
        StringWriter out = new StringWriter();
        long n = cm.copyOut("copy (select id, note, n from conf_copy order by id) to stdout", out);
        String s = out.toString();
        emit("copy_out", "rowcount", n, "sha256", sha256(s), "same_as_sent", s.equals(text),
             "first_lines", Arrays.asList(s.split("\n", 3)).subList(0, 2));
        try {
            cm.copyIn("copy conf_copy from stdin", new StringReader("1\tok\t1\nnot-a-number\tx\t2\n"));
            emit("copy_in_bad", "got", "no error");
        } catch (SQLException e) {
            emitErr("copy_in_bad", e);
        }
        emit("copy_after_bad", "rows", one(c, "select count(*) from conf_copy"));
    }

    static void cancel(Connection c) throws Exception {
        try (Connection watcher = connect(); Statement st = c.createStatement()) {
            Map<String, Object> result = new TreeMap<>();
            Thread t = new Thread(() -> {
                try {
                    st.executeQuery("select pg_sleep(30) /* " + TAG + " */");
                    result.put("error", "not cancelled");
                } catch (SQLException e) {
                    result.putAll(err(e));
                }
            });
            t.start();
            boolean active = false;
            for (int i = 0; i < 600 && !active; i++) {
                active = Long.valueOf(1).equals(one(watcher, SQL_WAIT_ACTIVE));
                if (!active) Thread.sleep(100);
            }
            if (!active) { emit("cancel_never_active"); System.exit(1); }
            st.cancel();
            t.join();
            emit("cancel", "outcome", result);
        }
        emit("reuse_after_cancel", "value", one(c, "select 44"));
    }

    static void unicode(Connection c) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("select ?::text, length(?::text), octet_length(?::text)")) {
            for (int i = 1; i <= 3; i++) ps.setString(i, UNICODE_TEXT);
            try (ResultSet rs = ps.executeQuery()) { rs.next(); emit("unicode_param", "values", row(rs)); }
        }
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("select 'ß☃😀' as \"col_ü\"")) {
            rs.next();
            emit("unicode_literal", "column", rs.getMetaData().getColumnLabel(1), "value", rs.getString(1));
        }
    }

    static void bigValue(Connection c) throws Exception {
        byte[] big = new byte[256 * 40960];
        for (int i = 0; i < big.length; i++) big[i] = (byte) i;
        try (PreparedStatement ps = c.prepareStatement("select length(v), md5(v), v from (select ?::bytea as v) s")) {
            ps.setBytes(1, big);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                emit("big_value_in", "values", Arrays.asList(canon(rs.getObject(1)), rs.getString(2)),
                     "echoed_equal", Arrays.equals(big, rs.getBytes(3)));
            }
        }
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(SQL_BIG_VALUE)) {
            rs.next();
            String v = rs.getString(1);
            emit("big_value_out", "length", v.length(), "sha256", sha256(v));
        }
    }

    // NoticeResponse, ParameterStatus after SET, FunctionCall (pgjdbc's large
    // object API uses the fast-path protocol).
    static void protocolExtras(Connection c) throws Exception {
        List<Object> notices = new ArrayList<>();
        try (Statement st = c.createStatement()) {
            st.execute("do $$ begin raise notice 'notice \u00fc %, %', 1, 'two'; raise warning 'warn'; end $$");
            for (SQLWarning w = st.getWarnings(); w != null; w = w.getNextWarning()) {
                org.postgresql.util.ServerErrorMessage m = ((PSQLWarning) w).getServerErrorMessage();
                notices.add(m.getSeverity() + ": " + m.getMessage());
            }
            emit("notices", "notices", notices);
            st.execute("set application_name = 'renamed \u00fc'");
        }
        PGConnection pg = c.unwrap(PGConnection.class);
        emit("parameter_status", "application_name", pg.getParameterStatus("application_name"));
        byte[] data = new byte[256 * 4096];
        for (int i = 0; i < data.length; i++) data[i] = (byte) i;
        c.setAutoCommit(false);
        LargeObjectManager lom = pg.getLargeObjectAPI();
        long oid = lom.createLO(LargeObjectManager.READWRITE);
        try (LargeObject lo = lom.open(oid, LargeObjectManager.WRITE)) { lo.write(data); }
        c.commit();
        byte[] back, part;
        try (LargeObject lo = lom.open(oid, LargeObjectManager.READ)) {
            back = lo.read(data.length + 10);
            lo.seek(1000);
            part = lo.read(4);
        }
        lom.delete(oid);
        c.commit();
        c.setAutoCommit(true);
        emit("large_object", "size", back.length, "read_equal", Arrays.equals(back, data), "part", canon(part));
    }

    public static void main(String[] args) throws Exception {
        try (Connection c = connect()) {
            session(c);
            types(c);
            bigResult(c);
            errors(c);
            transactions(c);
            notifications(c);
            copy(c);
            cancel(c);
            unicode(c);
            bigValue(c);
            protocolExtras(c);
        }
        emit("done");
    }
}
