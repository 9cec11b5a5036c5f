/* `{{name}}`: the share of null cells per reference column, alerting above `max_null_share`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "{{name}}", "0.1.0", "Share of nulls per column.",
    "{\"type\":\"object\",\"properties\":{\"max_null_share\":{\"type\":\"number\"}},\"additionalProperties\":false}"};

typedef struct {
  double max;
  size_t n;
  char **names;
  uint64_t rows;
  uint64_t *nulls;
} state;

void *keel_create(const char *config, size_t len, const keel_batch *ref, keel_error *err) {
  static const char *const keys[] = {"max_null_share", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  double max = 0.1;
  bool ok = keel_config_number(cfg, "max_null_share", &max, err);
  keel_config_free(cfg);
  if (!ok) return NULL;
  state *s = calloc(1, sizeof *s);
  s->max = max;
  s->n = keel_batch_ncols(ref);
  s->names = calloc(s->n + 1, sizeof *s->names);
  s->nulls = calloc(s->n + 1, sizeof *s->nulls);
  for (size_t i = 0; i < s->n; i++) {
    keel_str name = keel_col_name(keel_batch_col(ref, i));
    s->names[i] = strndup(name.ptr, name.len);
  }
  return s;
}

void keel_destroy(void *p) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) free(s->names[i]);
  free(s->names);
  free(s->nulls);
  free(s);
}

bool keel_observe(void *p, const keel_batch *in, keel_error *err) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) {
    const keel_column *c = keel_column_named(in, s->names[i]);
    if (!c) return keel_fail(err, KEEL_INVALID_INPUT, s->names[i], "missing column `%s`", s->names[i]);
    for (size_t r = 0; r < keel_batch_rows(in); r++) s->nulls[i] += !keel_valid(c, r);
  }
  s->rows += keel_batch_rows(in);
  return true;
}

bool keel_report(void *p, keel_report_t *r, keel_error *err) {
  (void)err;
  state *s = p;
  size_t alerts = 0;
  for (size_t i = 0; i < s->n; i++) {
    double share = s->rows ? (double)s->nulls[i] / (double)s->rows : 0.0;
    alerts += share > s->max;
    keel_metric(r, s->names[i], "null-share", share, s->max, share > s->max);
  }
  keel_report_set(r, s->rows, alerts > 0);
  keel_summary(r, "%zu of %zu columns above %g nulls", alerts, s->n, s->max);
  return true;
}

bool keel_snapshot(void *p, keel_bytes *out, keel_error *err) {
  (void)err;
  state *s = p;
  out->len = (s->n + 1) * sizeof(uint64_t);
  out->ptr = malloc(out->len);
  memcpy(out->ptr, &s->rows, sizeof(uint64_t));
  memcpy(out->ptr + sizeof(uint64_t), s->nulls, s->n * sizeof(uint64_t));
  return true;
}

bool keel_restore(void *p, const uint8_t *bytes, size_t len, keel_error *err) {
  state *s = p;
  if (len != (s->n + 1) * sizeof(uint64_t)) return keel_fail(err, KEEL_INVALID_STATE, NULL, "not a snapshot of this monitor");
  memcpy(&s->rows, bytes, sizeof(uint64_t));
  memcpy(s->nulls, bytes + sizeof(uint64_t), s->n * sizeof(uint64_t));
  return true;
}
