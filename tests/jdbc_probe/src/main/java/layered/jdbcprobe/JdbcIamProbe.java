package layered.jdbcprobe;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import software.amazon.awssdk.services.sts.StsClient;

/**
 * Connects to PostgreSQL the way Metabase does with MB_DB_AWS_IAM=true and reports, one JSON object a line,
 * what happened.
 *
 * <p>The connections go through the AWS Advanced JDBC Wrapper ({@code jdbc:aws-wrapper:postgresql:}) with its
 * {@code iam} plugin over pgjdbc: the plugin signs an RDS IAM token with the AWS SDK v2 (credentials from the
 * default chain) for each new physical connection and keeps it for {@code iamExpiration} seconds. The probe
 *
 * <ol>
 *   <li>asks STS who the default chain's credentials are ({@code identity});
 *   <li>opens a connection and reads {@code current_user} and whether the session is TLS ({@code iam-connect} 1);
 *   <li>opens another one at once, with the token the plugin keeps in its cache ({@code iam-connect} 2);
 *   <li>waits until the first token is older than {@code --token-lifetime} seconds (what the server accepts);
 *   <li>logs in with plain pgjdbc, the first token as a static password ({@code static-token}): refused when the
 *       server enforces the lifetime;
 *   <li>opens a third connection through the plugin ({@code iam-connect} 3).
 * </ol>
 *
 * <p>{@code --iam-host} (and {@code --iam-port}) name the RDS endpoint the tokens are signed for when {@code --host}
 * is another address of the same server (the wrapper's {@code iamHost} and {@code iamDefaultPort}).
 *
 * <p>Each {@code iam-connect} line lists the tokens the plugin used, in order (newly signed or cached, from the
 * plugin's own FINEST log records, and when each was signed), and how many attempts failed before the
 * connection stood: when the server refuses a cached token, the plugin signs a new one and tries once more, so a
 * connection that stands may still have been refused first. Tokens are never printed: a token is named by the
 * first 12 hex digits of its SHA-256. The exit code is 0 when every step ran, whatever the server answered; 2 for
 * bad arguments or an unexpected error.
 */
public final class JdbcIamProbe {

  private static final String PLUGIN_LOGGER = "software.amazon.jdbc.plugin.iam.IamAuthConnectionPlugin";
  private static final DateTimeFormatter AMZ_DATE =
      DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);

  private final Map<String, String> options;
  private final TokenEvents events = new TokenEvents();
  // a strong reference: java.util.logging keeps only weak ones to loggers
  private final Logger pluginLogger = Logger.getLogger(PLUGIN_LOGGER);

  private JdbcIamProbe(Map<String, String> options) {
    this.options = options;
    pluginLogger.setLevel(Level.FINEST);
    pluginLogger.addHandler(events);
  }

  public static void main(String[] args) {
    Map<String, String> options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      emit(map("event", "error", "message", e.getMessage()));
      System.exit(2);
      return;
    }
    try {
      new JdbcIamProbe(options).run();
    } catch (Exception e) {
      emit(map("event", "error", "message", e.toString()));
      System.exit(2);
    }
    System.exit(0);
  }

  private void run() throws Exception {
    int lifetime = Integer.parseInt(options.get("token-lifetime"));
    emit(map(
        "event", "start",
        "java", System.getProperty("java.version"),
        "wrapper", jarOf(software.amazon.jdbc.Driver.class),
        "pgjdbc", jarOf(org.postgresql.Driver.class),
        "rds", jarOf(software.amazon.awssdk.services.rds.RdsUtilities.class),
        "sts", jarOf(StsClient.class),
        "url", wrapperUrl(),
        "iam_host", options.get("iam-host"),
        "iam_expiration", Integer.parseInt(options.get("iam-expiration")),
        "token_lifetime", lifetime));
    identity();
    iamConnect(1);
    iamConnect(2);
    String firstToken = events.firstNewToken();
    if (firstToken == null) {
      emit(map("event", "error", "message", "the iam plugin logged no token it signed; nothing to wait for"));
      return;
    }
    Instant signedAt = signedAt(firstToken);
    Duration wait = Duration.between(Instant.now(), signedAt.plusSeconds(lifetime + 2L));
    emit(map("event", "wait", "seconds", Math.max(0, wait.toMillis()) / 1000.0, "first_token",
        tokenInfo(firstToken, "new")));
    if (!wait.isNegative()) {
      Thread.sleep(wait.toMillis());
    }
    staticToken(firstToken, signedAt);
    iamConnect(3);
  }

  /** Who the default credentials chain says we are (web identity: an assumed role). */
  private void identity() {
    try (StsClient sts = StsClient.create()) {
      var who = sts.getCallerIdentity();
      emit(map("event", "identity", "ok", true, "arn", who.arn(), "account", who.account()));
    } catch (RuntimeException e) {
      emit(map("event", "identity", "ok", false, "message", e.toString()));
    }
  }

  /** A new physical connection through the wrapper's iam plugin. */
  private void iamConnect(int n) {
    events.clear();
    Properties props = new Properties();
    props.setProperty("user", options.get("user"));
    props.setProperty("wrapperPlugins", "iam");
    props.setProperty("iamExpiration", options.get("iam-expiration"));
    if (options.containsKey("iam-host")) {
      // the endpoint the token is signed for, when the URL names another address of the same server
      props.setProperty("iamHost", options.get("iam-host"));
      props.setProperty("iamDefaultPort", options.getOrDefault("iam-port", "5432"));
    }
    props.setProperty("connectTimeout", "10");
    props.setProperty("loginTimeout", "30");
    Map<String, Object> line = map("event", "iam-connect", "n", n);
    try (Connection connection = DriverManager.getConnection(wrapperUrl(), props)) {
      line.put("ok", true);
      line.putAll(session(connection));
    } catch (SQLException e) {
      line.put("ok", false);
      line.putAll(failure(e));
    }
    List<Object> tokens = new ArrayList<>();
    for (TokenUse use : events.uses()) {
      tokens.add(tokenInfo(use.token(), use.source()));
    }
    line.put("tokens", tokens);
    line.put("failed_attempts", events.refusals());
    emit(line);
  }

  /** The first token, as a static password over plain pgjdbc. */
  private void staticToken(String token, Instant signedAt) {
    Map<String, Object> line = map("event", "static-token", "token", tokenInfo(token, "first"));
    line.put("age_seconds", Duration.between(signedAt, Instant.now()).toSeconds());
    Properties props = new Properties();
    props.setProperty("user", options.get("user"));
    props.setProperty("password", token);
    props.setProperty("connectTimeout", "10");
    try (Connection connection = DriverManager.getConnection(plainUrl(), props)) {
      line.put("ok", true);
      line.putAll(session(connection));
    } catch (SQLException e) {
      line.put("ok", false);
      line.putAll(failure(e));
    }
    emit(line);
  }

  private static Map<String, Object> session(Connection connection) throws SQLException {
    String query = "select current_user, (select ssl from pg_stat_ssl where pid = pg_backend_pid())";
    try (Statement statement = connection.createStatement(); ResultSet rows = statement.executeQuery(query)) {
      rows.next();
      return map("current_user", rows.getString(1), "ssl", rows.getBoolean(2));
    }
  }

  private static Map<String, Object> failure(SQLException e) {
    SQLException root = e;
    while (root.getSQLState() == null && root.getCause() instanceof SQLException cause) {
      root = cause;
    }
    return map("sqlstate", String.valueOf(root.getSQLState()), "message", String.valueOf(root.getMessage()));
  }

  private String tlsQuery() {
    return "sslmode=verify-full&sslrootcert=" + options.get("sslrootcert");
  }

  private String wrapperUrl() {
    return "jdbc:aws-wrapper:postgresql://" + options.get("host") + ":" + options.get("port") + "/"
        + options.get("database") + "?" + tlsQuery();
  }

  private String plainUrl() {
    return "jdbc:postgresql://" + options.get("host") + ":" + options.get("port") + "/" + options.get("database")
        + "?" + tlsQuery();
  }

  // ------------------------------------------------------------------ tokens

  /** What the iam plugin logs about the tokens it uses: "Generated new ..." / "Use cached ..." / login errors. */
  private static final class TokenEvents extends Handler {
    private final List<TokenUse> uses = new ArrayList<>();
    private final List<String> allNew = new ArrayList<>();
    private int refusals;

    @Override
    public synchronized void publish(LogRecord record) {
      String message = record.getMessage();
      if (message == null) {
        return;
      }
      if (message.startsWith("Generated new authentication token")) {
        String token = quoted(message);
        uses.add(new TokenUse(token, "new"));
        allNew.add(token);
      } else if (message.startsWith("Use cached authentication token")) {
        uses.add(new TokenUse(quoted(message), "cached"));
      } else if (message.startsWith("Error occurred while opening a connection")) {
        refusals++;
      }
    }

    synchronized void clear() {
      uses.clear();
      refusals = 0;
    }

    synchronized List<TokenUse> uses() {
      return List.copyOf(uses);
    }

    synchronized int refusals() {
      return refusals;
    }

    synchronized String firstNewToken() {
      return allNew.isEmpty() ? null : allNew.get(0);
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}

    private static String quoted(String message) {
      int start = message.indexOf('\'');
      int end = message.lastIndexOf('\'');
      return start >= 0 && end > start ? message.substring(start + 1, end) : "";
    }
  }

  private record TokenUse(String token, String source) {}

  private static Map<String, Object> tokenInfo(String token, String source) {
    Map<String, Object> info = map("source", source, "id", tokenId(token));
    try {
      info.put("signed_at", signedAt(token).toString());
    } catch (RuntimeException e) {
      info.put("signed_at", null);
    }
    return info;
  }

  private static String tokenId(String token) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest).substring(0, 12);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** X-Amz-Date of a token (an rds-db presigned URL without its scheme). */
  private static Instant signedAt(String token) {
    for (String pair : token.substring(token.indexOf('?') + 1).split("&")) {
      if (pair.startsWith("X-Amz-Date=")) {
        return Instant.from(AMZ_DATE.parse(pair.substring("X-Amz-Date=".length())));
      }
    }
    throw new IllegalArgumentException("the token has no X-Amz-Date");
  }

  // ------------------------------------------------------------------ arguments and output

  private static final List<String> REQUIRED = List.of("host", "user", "sslrootcert", "iam-expiration",
      "token-lifetime");

  private static Map<String, String> parse(String[] args) {
    Map<String, String> options = new HashMap<>(Map.of("port", "5432", "database", "postgres"));
    for (int i = 0; i < args.length; i += 2) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) {
        throw new IllegalArgumentException("usage: jdbc-iam-probe --host H [--port 5432] [--database postgres] "
            + "--user U --sslrootcert CA.pem --iam-expiration SECONDS --token-lifetime SECONDS "
            + "[--iam-host RDS-ENDPOINT [--iam-port 5432]]");
      }
      options.put(args[i].substring(2), args[i + 1]);
    }
    for (String name : REQUIRED) {
      if (!options.containsKey(name)) {
        throw new IllegalArgumentException("missing --" + name);
      }
    }
    for (String name : List.of("port", "iam-expiration", "token-lifetime", "iam-port")) {
      try {
        Integer.parseInt(options.getOrDefault(name, "0"));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--" + name + " must be a whole number of seconds");
      }
    }
    return options;
  }

  /** The jar a class was loaded from (its name says the version). */
  private static String jarOf(Class<?> type) {
    String path = type.getProtectionDomain().getCodeSource().getLocation().getPath();
    return path.substring(path.lastIndexOf('/') + 1);
  }

  private static Map<String, Object> map(Object... pairs) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      out.put((String) pairs[i], pairs[i + 1]);
    }
    return out;
  }

  private static synchronized void emit(Map<String, Object> line) {
    System.out.println(json(line));
    System.out.flush();
  }

  private static String json(Object value) {
    if (value == null) {
      return "null";
    }
    if (value instanceof Boolean || value instanceof Number) {
      return value.toString();
    }
    if (value instanceof List<?> array) {
      List<String> items = new ArrayList<>();
      array.forEach(item -> items.add(json(item)));
      return "[" + String.join(",", items) + "]";
    }
    if (value instanceof Map<?, ?> object) {
      List<String> members = new ArrayList<>();
      object.forEach((k, v) -> members.add(json(String.valueOf(k)) + ":" + json(v)));
      return "{" + String.join(",", members) + "}";
    }
    StringBuilder out = new StringBuilder("\"");
    for (char c : value.toString().toCharArray()) {
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }
}
