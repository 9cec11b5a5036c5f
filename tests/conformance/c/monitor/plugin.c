/* The conformance monitor in C (tests/conformance/README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "conformance-monitor", "0.1.0", "The cross-language conformance monitor (C).",
    "{\"type\":\"object\",\"properties\":{\"threshold\":{\"type\":\"number\"}},\"additionalProperties\":false}"};

typedef struct {
  double sum;
  uint64_t count, nulls;
} acc;

typedef struct {
  double threshold;
  size_t n;
  char **names;
  double *means;
  uint64_t rows;
  acc *acc;
} state;

/* Adds the valid, non-NaN values in row order (the same bits in every language). */
static void accumulate(acc *a, const keel_column *c, size_t rows) {
  for (size_t i = 0; i < rows; i++) {
    if (!keel_valid(c, i)) {
      a->nulls++;
      continue;
    }
    double x = keel_number(c, i);
    if (!isnan(x)) {
      a->sum += x;
      a->count++;
    }
  }
}

void *keel_create(const char *config, size_t len, const keel_batch *ref, keel_error *err) {
  static const char *const keys[] = {"threshold", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  double threshold = 0.1;
  bool ok = keel_config_number(cfg, "threshold", &threshold, err);
  keel_config_free(cfg);
  if (!ok) return NULL;
  if (keel_batch_rows(ref) == 0) {
    keel_fail(err, KEEL_INVALID_REFERENCE, NULL, "the reference has no rows");
    return NULL;
  }
  state *s = calloc(1, sizeof *s);
  s->threshold = threshold;
  size_t cols = keel_batch_ncols(ref);
  s->names = calloc(cols + 1, sizeof *s->names);
  s->means = calloc(cols + 1, sizeof *s->means);
  s->acc = calloc(cols + 1, sizeof *s->acc);
  for (size_t c = 0; c < cols; c++) {
    const keel_column *col = keel_batch_col(ref, c);
    if (!keel_is_numeric(col)) continue;
    acc a = {0};
    accumulate(&a, col, keel_batch_rows(ref));
    keel_str name = keel_col_name(col);
    s->names[s->n] = strndup(name.ptr, name.len);
    s->means[s->n] = a.count ? a.sum / (double)a.count : 0.0;
    s->n++;
  }
  return s;
}

void keel_destroy(void *p) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) free(s->names[i]);
  free(s->names);
  free(s->means);
  free(s->acc);
  free(s);
}

bool keel_observe(void *p, const keel_batch *in, keel_error *err) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) {
    const keel_column *c = keel_column_named(in, s->names[i]);
    if (!c) return keel_fail(err, KEEL_INVALID_INPUT, s->names[i], "missing column `%s`", s->names[i]);
    if (!keel_is_numeric(c))
      return keel_fail(err, KEEL_INVALID_INPUT, s->names[i], "column `%s` is not numeric", s->names[i]);
  }
  for (size_t i = 0; i < s->n; i++) accumulate(&s->acc[i], keel_column_named(in, s->names[i]), keel_batch_rows(in));
  s->rows += keel_batch_rows(in);
  return true;
}

bool keel_report(void *p, keel_report_t *r, keel_error *err) {
  (void)err;
  state *s = p;
  size_t shifted = 0;
  char list[4096] = "";
  for (size_t i = 0; i < s->n; i++) {
    acc *a = &s->acc[i];
    double shift = a->count ? fabs(a->sum / (double)a->count - s->means[i]) : 0.0;
    bool alert = shift > s->threshold;
    if (alert) {
      if (shifted++) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, s->names[i], sizeof list - strlen(list) - 1);
    }
    keel_metric(r, s->names[i], "mean-shift", shift, s->threshold, alert);
    keel_metric(r, s->names[i], "null-share", s->rows ? (double)a->nulls / (double)s->rows : 0.0, NAN, false);
  }
  keel_metric(r, NULL, "share-drifted", s->n ? (double)shifted / (double)s->n : 0.0, NAN, shifted > 0);
  keel_report_set(r, s->rows, shifted > 0);
  if (shifted)
    keel_summary(r, "%zu of %zu columns shifted: %s", shifted, s->n, list);
  else
    keel_summary(r, "%zu of %zu columns shifted", shifted, s->n);
  return true;
}

/* A snapshot: a magic word, the column count, rows, then each accumulator. */
#define MAGIC 0x4b43304du

bool keel_snapshot(void *p, keel_bytes *out, keel_error *err) {
  (void)err;
  state *s = p;
  size_t len = 2 * sizeof(uint32_t) + sizeof(uint64_t) + s->n * sizeof(acc);
  uint8_t *b = malloc(len);
  uint32_t head[2] = {MAGIC, (uint32_t)s->n};
  memcpy(b, head, sizeof head);
  memcpy(b + sizeof head, &s->rows, sizeof s->rows);
  memcpy(b + sizeof head + sizeof s->rows, s->acc, s->n * sizeof(acc));
  out->ptr = b;
  out->len = len;
  return true;
}

bool keel_restore(void *p, const uint8_t *bytes, size_t len, keel_error *err) {
  state *s = p;
  uint32_t head[2];
  size_t want = sizeof head + sizeof s->rows + s->n * sizeof(acc);
  if (len != want) return keel_fail(err, KEEL_INVALID_STATE, NULL, "not a conformance-monitor snapshot of this reference");
  memcpy(head, bytes, sizeof head);
  if (head[0] != MAGIC || head[1] != s->n)
    return keel_fail(err, KEEL_INVALID_STATE, NULL, "not a conformance-monitor snapshot of this reference");
  memcpy(&s->rows, bytes + sizeof head, sizeof s->rows);
  memcpy(s->acc, bytes + sizeof head + sizeof s->rows, s->n * sizeof(acc));
  return true;
}
