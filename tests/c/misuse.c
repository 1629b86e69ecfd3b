/*
 * Misuse of the C API, with no client: NULL for every pointer, invalid
 * UTF-8 for every string, bad arguments, a config that cannot start, a port
 * in use, calls after stop, stop twice (also from two threads at once),
 * free(NULL) everywhere, free of a running hub, the result texts, and the
 * keyed config setter.
 * Run under AddressSanitizer + UBSan and under valgrind by scripts/test-c.sh.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Invalid UTF-8: a lone continuation byte, an overlong NUL, a UTF-16
 * surrogate, a truncated sequence. */
static const char *const BAD_UTF8[] = {"\x80", "\xc0\x80", "\xed\xa0\x80", "ab\xe2\x82"};
#define N_BAD (sizeof BAD_UTF8 / sizeof BAD_UTF8[0])

static atomic_int callbacks_after_stop;
static atomic_int stop_returned;

static void count_event(void *userdata, const chathub_event *event) {
  (void)event;
  atomic_fetch_add((atomic_int *)userdata, 1);
  if (atomic_load(&stop_returned)) atomic_fetch_add(&callbacks_after_stop, 1);
}

static bool accept_all(void *userdata, const chathub_event *request, char *reason,
                       size_t reason_len) {
  (void)userdata;
  (void)request;
  (void)reason;
  (void)reason_len;
  return true;
}

static chathub_config *quick_config(void) {
  chathub_config *config = NULL;
  EXPECT(chathub_config_new(&config), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_bind(config, "127.0.0.1:0"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_worker_threads(config, 2), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_shutdown_timeout_ms(config, 2000), CHATHUB_RESULT_OK);
  return config;
}

static void result_texts(void) {
  for (uint32_t code = 0; code < CHATHUB_RESULT_COUNT; code++) {
    const char *text = chathub_result_text(code);
    CHECK(text != NULL && strcmp(text, "unknown result code") != 0);
  }
  CHECK(strcmp(chathub_result_text(CHATHUB_RESULT_COUNT), "unknown result code") == 0);
  CHECK(strcmp(chathub_result_text(CHATHUB_RESULT_OK), "ok") == 0);
  CHECK(strcmp(chathub_result_text(4000000000u), "unknown result code") == 0);
  CHECK(chathub_version() != NULL && strlen(chathub_version()) > 0);
  CHECK(chathub_last_error_message() != NULL);

  /* The header's version is the library's, and the check says which
   * programs it serves. */
  char version[64];
  snprintf(version, sizeof version, "%d.%d.%d", CHATHUB_VERSION_MAJOR, CHATHUB_VERSION_MINOR,
           CHATHUB_VERSION_PATCH);
  CHECK(strcmp(chathub_version(), version) == 0);
  EXPECT(CHATHUB_VERSION_CHECK(), CHATHUB_RESULT_OK);
  EXPECT(chathub_version_check(CHATHUB_VERSION_MAJOR + 1, 0, 0),
         CHATHUB_RESULT_INCOMPATIBLE_VERSION);
  CHECK(strstr(chathub_last_error_message(), version) != NULL);
  EXPECT(chathub_version_check(CHATHUB_VERSION_MAJOR, CHATHUB_VERSION_MINOR,
                               CHATHUB_VERSION_PATCH + 1),
         CHATHUB_RESULT_INCOMPATIBLE_VERSION);
}

static void config_misuse(void) {
  EXPECT(chathub_config_new(NULL), CHATHUB_RESULT_NULL_PARAMETER);
  chathub_config_free(NULL);

  /* NULL config, for every setter. */
  EXPECT(chathub_config_set_bind(NULL, "127.0.0.1:0"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_clear_namespaces(NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_namespace(NULL, "/x"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_limits(NULL, 1, 1, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_ping_interval_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_ping_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_connect_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_max_payload(NULL, 100), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_socket_buffer(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_cors_origin(NULL, "*"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_serve_page(NULL, false), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_page_path(NULL, "/x"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_client_dist(NULL, "/x"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_worker_threads(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_event_queue_capacity(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_hook_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_shutdown_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_redis_url(NULL, "redis://127.0.0.1:1"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_redis_prefix(NULL, "p"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_flood_limits(NULL, 1, 1, 1, 1, 1, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_slow_consumer_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_max_connections_per_ip(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_host_namespace(NULL, "/h"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_ip_limits(NULL, 1, 1, 1, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_request_timeout_ms(NULL, 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_trusted_proxy(NULL, "10.0.0.1"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set(NULL, "bind", ""), CHATHUB_RESULT_NULL_PARAMETER);

  chathub_config *config = NULL;
  EXPECT(chathub_config_new(&config), CHATHUB_RESULT_OK);
  CHECK(config != NULL);

  /* NULL strings. */
  EXPECT(chathub_config_set_bind(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_namespace(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_cors_origin(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_page_path(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_client_dist(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_redis_url(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_redis_prefix(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  CHECK(strstr(chathub_last_error_message(), "is NULL") != NULL);

  /* Invalid UTF-8, for every string setter. */
  for (size_t i = 0; i < N_BAD; i++) {
    EXPECT(chathub_config_set_bind(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_add_namespace(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_add_cors_origin(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_set_page_path(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_set_client_dist(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_set_redis_url(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_set_redis_prefix(config, BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
  }
  CHECK(strstr(chathub_last_error_message(), "UTF-8") != NULL);

  /* Malformed addresses. */
  EXPECT(chathub_config_set_bind(config, ""), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set_bind(config, "localhost:3000"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set_bind(config, "127.0.0.1"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set_bind(config, "127.0.0.1:70000"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set_bind(config, "[::1]:0"), CHATHUB_RESULT_OK);

  /* Every setter with a plain value. */
  EXPECT(chathub_config_set_limits(config, 10, 10, 100), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_ping_interval_ms(config, 1000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_ping_timeout_ms(config, 1000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_connect_timeout_ms(config, 1000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_max_payload(config, 10000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_socket_buffer(config, 16), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_add_cors_origin(config, "*"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_serve_page(config, true), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_client_dist(config, "/nonexistent"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_worker_threads(config, 0), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_event_queue_capacity(config, 8), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_hook_timeout_ms(config, 100), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_shutdown_timeout_ms(config, 1000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_flood_limits(config, 10, 20, 1000, 2000, 5, 64), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_slow_consumer_timeout_ms(config, 500), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_max_connections_per_ip(config, 100), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_redis_prefix(config, "tests"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_add_host_namespace(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_host_namespace(config, "/host"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_ip_limits(config, 500, 1000, 0, 0), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_request_timeout_ms(config, 2000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_add_trusted_proxy(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_add_trusted_proxy(config, "not an address"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_add_trusted_proxy(config, "10.0.0.1"), CHATHUB_RESULT_OK);
  chathub_config_free(config);

  /* A Redis URL nothing answers at: a clear start error. */
  chathub_config *redis = NULL;
  EXPECT(chathub_config_new(&redis), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_bind(redis, "127.0.0.1:0"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_redis_url(redis, "redis://127.0.0.1:1"), CHATHUB_RESULT_OK);
  chathub_hub *nohub = NULL;
  EXPECT(chathub_hub_start(redis, &nohub), CHATHUB_RESULT_REDIS_UNAVAILABLE);
  CHECK(nohub == NULL);
  CHECK(strstr(chathub_last_error_message(), "cannot reach Redis") != NULL);
  CHECK(strcmp(chathub_result_text(CHATHUB_RESULT_REDIS_UNAVAILABLE), "Redis could not be reached") == 0);
  EXPECT(chathub_config_set_redis_url(redis, "http://nope"), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(redis, &nohub), CHATHUB_RESULT_INVALID_CONFIG);
  chathub_config_free(redis);

  /* TLS: NULL with a length, then PEM that is none: a clear start error. */
  chathub_config *tls = NULL;
  EXPECT(chathub_config_new(&tls), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_bind(tls, "127.0.0.1:0"), CHATHUB_RESULT_OK);
  const uint8_t junk[] = "not a certificate";
  EXPECT(chathub_config_set_tls_pem(NULL, junk, sizeof junk, junk, sizeof junk), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_tls_pem(tls, NULL, 4, junk, sizeof junk), CHATHUB_RESULT_NULL_PARAMETER);
  CHECK(strstr(chathub_last_error_message(), "cert_pem is NULL") != NULL);
  EXPECT(chathub_config_set_tls_pem(tls, junk, sizeof junk, NULL, 4), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set_tls_pem(tls, junk, sizeof junk, junk, sizeof junk), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(tls, &nohub), CHATHUB_RESULT_TLS);
  CHECK(nohub == NULL);
  CHECK(strstr(chathub_last_error_message(), "no CERTIFICATE") != NULL);
  CHECK(strcmp(chathub_result_text(CHATHUB_RESULT_TLS), "the TLS certificate or key could not be used") == 0);
  /* A certificate file without its key. */
  EXPECT(chathub_config_set(tls, "tls_key", ""), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(tls, &nohub), CHATHUB_RESULT_INVALID_CONFIG);
  CHECK(strstr(chathub_last_error_message(), "tls_cert and tls_key") != NULL);
  chathub_config_free(tls);
}

/* Copies the JSON string value that starts right after `start` (no
   escapes expected) into `out`; returns the text after its closing quote,
   or NULL when it does not fit or does not end. */
static const char *json_string_after(const char *start, char *out, size_t out_len) {
  const char *end = strchr(start, '"');
  if (end == NULL || (size_t)(end - start) >= out_len) return NULL;
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return end + 1;
}

/* chathub_config_set: NULLs, invalid UTF-8, an unknown key, bad values,
   good ones a hub then starts with; chathub_config_keys: every key listed
   takes its default back. */
static void keyed_config(void) {
  chathub_config *config = NULL;
  EXPECT(chathub_config_new(&config), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, NULL, "1"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_set(config, "ping_interval_ms", NULL), CHATHUB_RESULT_NULL_PARAMETER);
  CHECK(strstr(chathub_last_error_message(), "value is NULL") != NULL);
  for (size_t i = 0; i < N_BAD; i++) {
    EXPECT(chathub_config_set(config, BAD_UTF8[i], "1"), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_config_set(config, "redis_prefix", BAD_UTF8[i]), CHATHUB_RESULT_INVALID_UTF8);
  }

  /* An unknown key: the message names it, and the key meant. */
  EXPECT(chathub_config_set(config, "pingg_interval_ms", "1000"), CHATHUB_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(chathub_last_error_message(), "unknown config key \"pingg_interval_ms\"") != NULL);
  CHECK(strstr(chathub_last_error_message(), "did you mean \"ping_interval_ms\"") != NULL);
  EXPECT(chathub_config_set(config, "", ""), CHATHUB_RESULT_INVALID_ARGUMENT);

  /* Values not of the key's form. */
  EXPECT(chathub_config_set(config, "ping_interval_ms", "abc"), CHATHUB_RESULT_INVALID_ARGUMENT);
  CHECK(strcmp(chathub_last_error_message(),
               "config key \"ping_interval_ms\": \"abc\" is not a number of milliseconds") == 0);
  EXPECT(chathub_config_set(config, "ping_interval_ms", "-5"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set(config, "flood.strikes", "4294967296"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set(config, "serve_page", "maybe"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set(config, "bind", "localhost:3000"), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_config_set(config, "trusted_proxies", "10.0.0.1,proxy"),
         CHATHUB_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(chathub_last_error_message(), "\"proxy\" is not an IP address") != NULL);

  /* Good values: a hub starts with them (form checked here, values at start). */
  EXPECT(chathub_config_set(config, "bind", "127.0.0.1:0"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "namespaces", "/a,/b"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "worker_threads", "2"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "shutdown_timeout_ms", "2000"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "serve_page", "off"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "flood.events_per_sec", "50"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "redis_url", ""), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "trusted_proxies", "10.0.0.1, ::1"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set(config, "limits.max_name_len", "0"), CHATHUB_RESULT_OK);
  chathub_hub *hub = NULL;
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_INVALID_CONFIG);
  CHECK(hub == NULL);
  EXPECT(chathub_config_set(config, "limits.max_name_len", "32"), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_OK);
  chathub_config_free(config);
  char *json = NULL;
  EXPECT(chathub_hub_rooms(hub, "/a", &json), CHATHUB_RESULT_OK);
  CHECK(json != NULL && strcmp(json, "{\"ns\":\"/a\",\"lobby\":[],\"rooms\":[]}") == 0);
  chathub_string_free(json);
  json = NULL;
  EXPECT(chathub_hub_rooms(hub, "/b", &json), CHATHUB_RESULT_OK);
  chathub_string_free(json);
  json = NULL;
  EXPECT(chathub_hub_rooms(hub, "/chat", &json), CHATHUB_RESULT_UNKNOWN_NAMESPACE);
  CHECK(json == NULL);
  CHECK(strstr(chathub_last_error_message(), "unknown namespace") != NULL);
  EXPECT(chathub_hub_stop(hub), CHATHUB_RESULT_OK);
  chathub_hub_free(hub);

  /* The listing: a JSON array of {default, doc, kind, name}; every key in
     it takes its default back. */
  EXPECT(chathub_config_keys(NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_config_keys(&json), CHATHUB_RESULT_OK);
  CHECK(json != NULL && json[0] == '[' && json[strlen(json) - 1] == ']');
  CHECK(strstr(json, "\"name\":\"ping_interval_ms\"") != NULL);
  CHECK(strstr(json, "\"kind\":\"milliseconds\"") != NULL);
  CHECK(strstr(json, "\"name\":\"flood.events_per_sec\"") != NULL);
  EXPECT(chathub_config_new(&config), CHATHUB_RESULT_OK);
  int keys = 0;
  const char *at = json;
  while ((at = strstr(at, "{\"default\":\"")) != NULL) {
    char value[256], name[128];
    at = json_string_after(at + strlen("{\"default\":\""), value, sizeof value);
    CHECK(at != NULL);
    if (at == NULL) break;
    at = strstr(at, "\"name\":\"");
    CHECK(at != NULL);
    if (at == NULL) break;
    at = json_string_after(at + strlen("\"name\":\""), name, sizeof name);
    CHECK(at != NULL);
    if (at == NULL) break;
    EXPECT(chathub_config_set(config, name, value), CHATHUB_RESULT_OK);
    keys++;
  }
  CHECK(keys >= 40);
  chathub_config_free(config);
  chathub_string_free(json);
}

static void start_misuse(void) {
  chathub_hub *hub = NULL;
  chathub_config *config = quick_config();
  EXPECT(chathub_hub_start(NULL, &hub), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_start(config, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  CHECK(hub == NULL);

  /* Values the core refuses: no namespace, a bad one, a zero limit. */
  EXPECT(chathub_config_clear_namespaces(config), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_INVALID_CONFIG);
  CHECK(strstr(chathub_last_error_message(), "namespace") != NULL);
  EXPECT(chathub_config_add_namespace(config, "chat"), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_INVALID_CONFIG);
  CHECK(strstr(chathub_last_error_message(), "must start with '/'") != NULL);
  EXPECT(chathub_config_clear_namespaces(config), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_add_namespace(config, "/chat"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_limits(config, 0, 64, 64), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_INVALID_CONFIG);
  EXPECT(chathub_config_set_limits(config, 64, 64, 1000), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_page_path(config, "/nonexistent/page.html"), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_IO);
  CHECK(hub == NULL);
  chathub_config_free(config);

  /* A port in use. */
  config = quick_config();
  chathub_hub *first = NULL;
  EXPECT(chathub_hub_start(config, &first), CHATHUB_RESULT_OK);
  uint16_t port = 0;
  EXPECT(chathub_hub_port(first, &port), CHATHUB_RESULT_OK);
  CHECK(port != 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  EXPECT(chathub_config_set_bind(config, addr), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_BIND_FAILED);
  CHECK(hub == NULL);
  chathub_config_free(config);
  /* Freeing a running hub stops it. */
  chathub_hub_free(first);
  chathub_hub_free(NULL);
}

/* Every function of a running hub with NULL / invalid UTF-8 / bad values. */
static void hub_misuse(chathub_hub *hub) {
  uint16_t port = 0;
  size_t count = 99;
  char *json = NULL;
  int events = 0;
  EXPECT(chathub_hub_port(NULL, &port), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_port(hub, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_socket_count(NULL, &count), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_socket_count(hub, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_socket_count(hub, &count), CHATHUB_RESULT_OK);
  CHECK(count == 0);
  EXPECT(chathub_hub_stop(NULL), CHATHUB_RESULT_NULL_PARAMETER);

  EXPECT(chathub_hub_subscribe(NULL, CHATHUB_KIND_ALL, count_event, &events),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_subscribe(hub, CHATHUB_KIND_ALL, NULL, &events),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_subscribe(hub, 0, count_event, &events), CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_hub_subscribe(hub, 1u << 20, count_event, &events),
         CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_hub_set_connect_hook(NULL, accept_all, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_set_login_hook(NULL, accept_all, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_set_connect_hook(hub, accept_all, NULL), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_set_login_hook(hub, accept_all, NULL), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_set_connect_hook(hub, NULL, NULL), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_set_login_hook(hub, NULL, NULL), CHATHUB_RESULT_OK);

  /* emit: NULL for each pointer. */
  EXPECT(chathub_hub_emit(NULL, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, NULL, NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, NULL, "[]", NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", NULL, NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_SOCKET, "/", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_ROOM, "/", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e",
                          "[{\"_placeholder\":true,\"num\":0}]", NULL, 1),
         CHATHUB_RESULT_NULL_PARAMETER);
  chathub_bytes null_data = {NULL, 3};
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", "[]", &null_data, 1),
         CHATHUB_RESULT_NULL_PARAMETER);
  /* emit: invalid UTF-8 in each string. */
  for (size_t i = 0; i < N_BAD; i++) {
    const char *bad = BAD_UTF8[i];
    EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, bad, NULL, "e", "[]", NULL, 0),
           CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_ROOM, "/", bad, "e", "[]", NULL, 0),
           CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, bad, "[]", NULL, 0),
           CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", bad, NULL, 0),
           CHATHUB_RESULT_INVALID_UTF8);
  }
  /* emit: bad values. */
  EXPECT(chathub_hub_emit(hub, 42, "/", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", "{", NULL, 0),
         CHATHUB_RESULT_INVALID_JSON);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", "\"x\"", NULL, 0),
         CHATHUB_RESULT_INVALID_JSON);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e",
                          "[{\"_placeholder\":true,\"num\":1}]", NULL, 0),
         CHATHUB_RESULT_INVALID_ARGUMENT);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/nope", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_UNKNOWN_NAMESPACE);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "", "[]", NULL, 0),
         CHATHUB_RESULT_INVALID_EVENT_NAME);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "disconnect", "[]", NULL, 0),
         CHATHUB_RESULT_INVALID_EVENT_NAME);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_ROOM, "/", "   ", "e", "[]", NULL, 0),
         CHATHUB_RESULT_INVALID_ROOM);
  /* emit: fine, to nobody. */
  const uint8_t blob[] = {0, 1, 2, 255};
  chathub_bytes one = {blob, sizeof blob};
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_LOBBY, "/chat", NULL, "e",
                          "[\"a\",{\"_placeholder\":true,\"num\":0}]", &one, 1),
         CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_SOCKET, "/", "nosuchsocket", "e", "[]", NULL, 0),
         CHATHUB_RESULT_OK);

  /* join / leave / disconnect / rooms. */
  EXPECT(chathub_hub_join(NULL, "/", "s", "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_join(hub, NULL, "s", "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_join(hub, "/", NULL, "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_join(hub, "/", "s", NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_leave(NULL, "/", "s", "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_leave(hub, NULL, "s", "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_leave(hub, "/", NULL, "r"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_leave(hub, "/", "s", NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_disconnect(NULL, "/", "s"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_disconnect(hub, NULL, "s"), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_disconnect(hub, "/", NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_rooms(NULL, "/", &json), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_rooms(hub, NULL, &json), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_rooms(hub, "/", NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_stats(NULL, &json), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_stats(hub, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_stats(hub, &json), CHATHUB_RESULT_OK);
  CHECK(json != NULL && strstr(json, "\"packets_dropped\":0") != NULL);
  chathub_string_free(json);
  json = NULL;
  EXPECT(chathub_hub_metrics_text(NULL, &json), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_metrics_text(hub, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_metrics_text(hub, &json), CHATHUB_RESULT_OK);
  CHECK(json != NULL && strstr(json, "# TYPE chathub_connections gauge\n") != NULL);
  chathub_string_free(json);
  json = NULL;
  EXPECT(chathub_hub_client_bundle(NULL, &json), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_client_bundle(hub, NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_reload_tls(NULL), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_reload_tls(hub), CHATHUB_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(chathub_last_error_message(), "started without TLS") != NULL);
  EXPECT(chathub_hub_set_tls_pem(NULL, (const uint8_t *)"c", 1, (const uint8_t *)"k", 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_set_tls_pem(hub, NULL, 1, (const uint8_t *)"k", 1), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_hub_set_tls_pem(hub, (const uint8_t *)"c", 1, (const uint8_t *)"k", 1), CHATHUB_RESULT_INVALID_ARGUMENT);
  {
    /* Found from the working directory (the tests run in the checkout,
       where npm installed socket.io-client), or a clear failure. */
    chathub_result r = chathub_hub_client_bundle(hub, &json);
    CHECK((r == CHATHUB_RESULT_OK && json != NULL && strstr(json, "socket.io-client") != NULL) ||
          (r == CHATHUB_RESULT_FAILED && json == NULL &&
           strstr(chathub_last_error_message(), "client bundle") != NULL));
    chathub_string_free(json);
    json = NULL;
  }
  for (size_t i = 0; i < N_BAD; i++) {
    const char *bad = BAD_UTF8[i];
    EXPECT(chathub_hub_join(hub, bad, "s", "r"), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_join(hub, "/", bad, "r"), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_join(hub, "/", "s", bad), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_leave(hub, "/", bad, "r"), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_leave(hub, "/", "s", bad), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_disconnect(hub, bad, "s"), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_disconnect(hub, "/", bad), CHATHUB_RESULT_INVALID_UTF8);
    EXPECT(chathub_hub_rooms(hub, bad, &json), CHATHUB_RESULT_INVALID_UTF8);
  }
  EXPECT(chathub_hub_join(hub, "/", "nosuchsocket", "r"), CHATHUB_RESULT_SOCKET_NOT_FOUND);
  EXPECT(chathub_hub_join(hub, "/", "nosuchsocket", ""), CHATHUB_RESULT_INVALID_ROOM);
  EXPECT(chathub_hub_join(hub, "/nope", "nosuchsocket", "r"), CHATHUB_RESULT_UNKNOWN_NAMESPACE);
  EXPECT(chathub_hub_leave(hub, "/", "nosuchsocket", "r"), CHATHUB_RESULT_SOCKET_NOT_FOUND);
  EXPECT(chathub_hub_disconnect(hub, "/", "nosuchsocket"), CHATHUB_RESULT_SOCKET_NOT_FOUND);
  EXPECT(chathub_hub_rooms(hub, "/nope", &json), CHATHUB_RESULT_UNKNOWN_NAMESPACE);
  CHECK(json == NULL);
  EXPECT(chathub_hub_rooms(hub, "/chat", &json), CHATHUB_RESULT_OK);
  CHECK(json != NULL && strcmp(json, "{\"ns\":\"/chat\",\"lobby\":[],\"rooms\":[]}") == 0);
  chathub_string_free(json);
  chathub_string_free(NULL);
}

/* Event accessors and acks outside any callback: NULL everywhere. */
static void event_misuse(void) {
  size_t len = 7;
  const uint8_t *data = NULL;
  chathub_ack *ack = NULL;
  CHECK(chathub_event_kind(NULL) == 0);
  CHECK(chathub_event_ns(NULL, &len) == NULL && len == 7);
  CHECK(chathub_event_sid(NULL, NULL) == NULL);
  CHECK(chathub_event_name(NULL, NULL) == NULL);
  CHECK(chathub_event_previous_name(NULL, NULL) == NULL);
  CHECK(chathub_event_room(NULL, NULL) == NULL);
  CHECK(chathub_event_from_room(NULL, NULL) == NULL);
  CHECK(chathub_event_text(NULL, NULL) == NULL);
  CHECK(chathub_event_event_name(NULL, NULL) == NULL);
  CHECK(chathub_event_error(NULL, NULL) == NULL);
  CHECK(chathub_event_reason(NULL, NULL) == NULL);
  CHECK(chathub_event_args_json(NULL, NULL) == NULL);
  CHECK(chathub_event_auth_json(NULL, NULL) == NULL);
  CHECK(chathub_event_remote_addr(NULL, NULL) == NULL);
  CHECK(chathub_event_header(NULL, "cookie", NULL) == NULL);
  CHECK(chathub_event_header(NULL, NULL, NULL) == NULL);
  CHECK(chathub_event_transport(NULL, NULL) == NULL);
  CHECK(!chathub_event_by_host(NULL));
  CHECK(chathub_event_node(NULL, NULL) == NULL);
  CHECK(chathub_event_limit(NULL, NULL) == NULL);
  CHECK(!chathub_event_flag(NULL));
  CHECK(chathub_event_attachment_count(NULL) == 0);
  CHECK(!chathub_event_has_ack(NULL));
  EXPECT(chathub_event_attachment(NULL, 0, &data, &len), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_event_take_ack(NULL, &ack), CHATHUB_RESULT_NULL_PARAMETER);
  CHECK(ack == NULL);
  EXPECT(chathub_ack_send(NULL, "[]", NULL, 0), CHATHUB_RESULT_NULL_PARAMETER);
  chathub_ack_free(NULL);
}

static void *stop_in_thread(void *hub) {
  return (void *)(uintptr_t)chathub_hub_stop((chathub_hub *)hub);
}

/* Stop twice, from two threads at once, then every call after stop. */
static void after_stop(void) {
  chathub_config *config = quick_config();
  chathub_hub *hub = NULL;
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_OK);
  chathub_config_free(config);
  hub_misuse(hub);

  atomic_int events = 0;
  EXPECT(chathub_hub_subscribe(hub, CHATHUB_KIND_ALL, count_event, &events), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_subscribe(hub, CHATHUB_KIND_CONNECT | CHATHUB_KIND_DISCONNECT, count_event,
                               &events),
         CHATHUB_RESULT_OK);

  pthread_t a, b;
  CHECK(pthread_create(&a, NULL, stop_in_thread, hub) == 0);
  CHECK(pthread_create(&b, NULL, stop_in_thread, hub) == 0);
  void *ra = NULL, *rb = NULL;
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  atomic_store(&stop_returned, 1);
  CHECK((uintptr_t)ra == CHATHUB_RESULT_OK && (uintptr_t)rb == CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_stop(hub), CHATHUB_RESULT_OK);

  char *json = NULL;
  uint16_t port = 0;
  EXPECT(chathub_hub_port(hub, &port), CHATHUB_RESULT_OK);
  CHECK(port != 0);
  EXPECT(chathub_hub_subscribe(hub, CHATHUB_KIND_ALL, count_event, &events),
         CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_set_connect_hook(hub, accept_all, NULL), CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_set_login_hook(hub, accept_all, NULL), CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", "[]", NULL, 0),
         CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_join(hub, "/", "s", "r"), CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_leave(hub, "/", "s", "r"), CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_disconnect(hub, "/", "s"), CHATHUB_RESULT_CLOSED);
  EXPECT(chathub_hub_rooms(hub, "/", &json), CHATHUB_RESULT_CLOSED);
  CHECK(json == NULL);
  CHECK(strstr(chathub_last_error_message(), "closed") != NULL);
  /* Arguments are still checked first. */
  EXPECT(chathub_hub_emit(hub, CHATHUB_TARGET_NAMESPACE, "/", NULL, "e", NULL, NULL, 0),
         CHATHUB_RESULT_NULL_PARAMETER);
  chathub_hub_free(hub);
  hub = NULL;
  chathub_hub_free(hub); /* the API's promise: free(NULL) after free is fine */
  CHECK(atomic_load(&callbacks_after_stop) == 0);
}

/* Log lines seen, and how many said the hub listens. */
static atomic_int log_lines = 0;
static atomic_int listening_lines = 0;

static void on_log(void *userdata, uint32_t level, const char *target, const char *message) {
  CHECK(userdata == &log_lines);
  CHECK(level >= 1 && level <= 5 && target != NULL && message != NULL);
  atomic_fetch_add(&log_lines, 1);
  if (strstr(message, "listening") != NULL) atomic_fetch_add(&listening_lines, 1);
}

/* Logs to a callback: once per process, a bad filter refused, then the
   hub's start line seen. */
static void logs(void) {
  EXPECT(chathub_log_to_callback("info", NULL, &log_lines), CHATHUB_RESULT_NULL_PARAMETER);
  EXPECT(chathub_log_to_callback("chathub=loud", on_log, &log_lines),
         CHATHUB_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(chathub_last_error_message(), "invalid log filter") != NULL);
  EXPECT(chathub_log_to_callback("chathub=info", on_log, &log_lines), CHATHUB_RESULT_OK);
  EXPECT(chathub_log_to_callback("info", on_log, &log_lines), CHATHUB_RESULT_FAILED);
  EXPECT(chathub_log_to_stderr(NULL), CHATHUB_RESULT_FAILED);
  EXPECT(chathub_log_to_stderr_json(NULL), CHATHUB_RESULT_FAILED);
  CHECK(strstr(chathub_last_error_message(), "already set up") != NULL);
  chathub_config *config = quick_config();
  chathub_hub *hub = NULL;
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_OK);
  chathub_config_free(config);
  CHECK(atomic_load(&listening_lines) >= 1);
  CHECK(atomic_load(&log_lines) >= atomic_load(&listening_lines));
  EXPECT(chathub_hub_stop(hub), CHATHUB_RESULT_OK);
  chathub_hub_free(hub);
}

/* Two self-signed test pairs (made with openssl for these tests only; valid
 * for a century, so that the test never expires). */
static const char CERT1[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmjCCAUGgAwIBAgIUa/3ywXTfrZL9UJgJTLhGVK3zMwkwCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEzMDEyNTQyOVoYDzIxMjYxMTA2\n"
    "MTI1NDI5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAARBYxvVT/AVyhSH1SOyL+XxCNUWtiWO/fLQ1d7F6fa3B1IUMC9W2NW2\n"
    "gRuTsTilFU3Ywfjs6JIrGZ9qsiSS+arFo28wbTAdBgNVHQ4EFgQUKlLsH88/dGMg\n"
    "9tUUJj88Hw5gca8wHwYDVR0jBBgwFoAUKlLsH88/dGMg9tUUJj88Hw5gca8wDwYD\n"
    "VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\n"
    "zj0EAwIDRwAwRAIgCVtDItS5zLLXRNQXgEUpjB5dLDzD3KksI6GN6HU2c3ICIF3W\n"
    "NZ3RSjtRWC69+KAnUpt4m5mfy7SsDl0SFezgTWmp\n"
    "-----END CERTIFICATE-----\n";
static const char KEY1[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguizmlwKgkYFHHdgJ\n"
    "GescFajkfFzcO8i13m6xEo92gkGhRANCAARBYxvVT/AVyhSH1SOyL+XxCNUWtiWO\n"
    "/fLQ1d7F6fa3B1IUMC9W2NW2gRuTsTilFU3Ywfjs6JIrGZ9qsiSS+arF\n"
    "-----END PRIVATE KEY-----\n";
static const char CERT2[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmzCCAUGgAwIBAgIUdQutdLbm5Us1Yqls9MjUakT5dn0wCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEzMDEyNTQyOVoYDzIxMjYxMTA2\n"
    "MTI1NDI5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAATvJmxpyvEzmhjeneeVD8yNtngfpsK8CF7XTPs+FC6A6VsuI2gSUVmv\n"
    "Ayb5nP6Gaedfm1C5qQ2ANDFWTIdyt2Rlo28wbTAdBgNVHQ4EFgQU5XRJ2B9ZSPUA\n"
    "1lH3C9MY5SWnZycwHwYDVR0jBBgwFoAU5XRJ2B9ZSPUA1lH3C9MY5SWnZycwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\n"
    "zj0EAwIDSAAwRQIhAJKyUjv5F56mDO5LwN+gkWLnCZX3PPB4yzOrZ64m//laAiBN\n"
    "SMMQkrg/d+AJyX2dWCYTUyhDzL+cRXkZU+7YfOr+4A==\n"
    "-----END CERTIFICATE-----\n";
static const char KEY2[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgglzlq8eLtmr3QRII\n"
    "mmxk2xKg+tZmiQCxCRZD5rxmGOKhRANCAATvJmxpyvEzmhjeneeVD8yNtngfpsK8\n"
    "CF7XTPs+FC6A6VsuI2gSUVmvAyb5nP6Gaedfm1C5qQ2ANDFWTIdyt2Rl\n"
    "-----END PRIVATE KEY-----\n";

#define PEM(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* TLS from PEM in memory: a hub starts with a pair, takes another, refuses
 * a key that is not its certificate's (keeping the pair it had). */
static void tls_pem(void) {
  chathub_config *config = NULL;
  EXPECT(chathub_config_new(&config), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_bind(config, "127.0.0.1:0"), CHATHUB_RESULT_OK);
  EXPECT(chathub_config_set_tls_pem(config, PEM(CERT1), PEM(KEY2)), CHATHUB_RESULT_OK);
  chathub_hub *hub = NULL;
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_TLS);
  CHECK(hub == NULL);
  CHECK(strstr(chathub_last_error_message(), "does not belong to the certificate") != NULL);
  EXPECT(chathub_config_set_tls_pem(config, PEM(CERT1), PEM(KEY1)), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_start(config, &hub), CHATHUB_RESULT_OK);
  chathub_config_free(config);
  CHECK(hub != NULL);
  if (hub == NULL) return;
  EXPECT(chathub_hub_set_tls_pem(hub, PEM(CERT2), PEM(KEY2)), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_set_tls_pem(hub, PEM(CERT2), PEM(KEY1)), CHATHUB_RESULT_TLS);
  CHECK(strstr(chathub_last_error_message(), "does not belong to the certificate") != NULL);
  EXPECT(chathub_hub_set_tls_pem(hub, (const uint8_t *)CERT2, 0, PEM(KEY2)), CHATHUB_RESULT_TLS);
  CHECK(strstr(chathub_last_error_message(), "no CERTIFICATE") != NULL);
  /* PEM given in memory is read again from memory. */
  EXPECT(chathub_hub_reload_tls(hub), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_stop(hub), CHATHUB_RESULT_OK);
  EXPECT(chathub_hub_reload_tls(hub), CHATHUB_RESULT_OK);
  chathub_hub_free(hub);
}

int main(void) {
  logs();
  result_texts();
  config_misuse();
  keyed_config();
  start_misuse();
  event_misuse();
  after_stop();
  tls_pem();
  return check_summary("misuse");
}
