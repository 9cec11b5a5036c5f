/* `psi-monitor`: the population stability index of numeric columns. Bin
 * edges are the reference's quantiles (value at index floor(k n / bins) of
 * the sorted valid values, deduplicated; a bin holds [edge_k, edge_k+1));
 * PSI = sum over bins of (q - p) ln(q / p), with empty bins counted as
 * 1e-4. NaN and nulls are not binned. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "psi-monitor", "0.1.0", "Population stability index of numeric columns against reference quantile bins.",
    "{\"type\":\"object\",\"properties\":{\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"bins\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":100},\"threshold\":{\"type\":\"number\",\"exclusiveMinimum\":0}},"
    "\"additionalProperties\":false}"};

#define EMPTY 1e-4
#define MAX_BINS 100

typedef struct {
  char *name;
  size_t nedges; /* bins = nedges + 1 */
  double edges[MAX_BINS];
  double ref[MAX_BINS + 1];
  uint64_t counts[MAX_BINS + 1];
} column;

typedef struct {
  double threshold;
  size_t n;
  column *cols;
  uint64_t rows;
} state;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static size_t bin_of(const column *c, double x) {
  size_t lo = 0, hi = c->nedges; /* first edge > x */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->edges[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static bool fit(column *c, const keel_column *col, size_t rows, size_t bins, keel_error *err) {
  double *v = malloc((rows ? rows : 1) * sizeof *v);
  size_t n = 0;
  for (size_t i = 0; i < rows; i++)
    if (keel_valid(col, i) && !isnan(keel_number(col, i))) v[n++] = keel_number(col, i);
  if (n == 0) {
    free(v);
    return keel_fail(err, KEEL_INVALID_REFERENCE, c->name, "column `%s` has no values in the reference", c->name);
  }
  qsort(v, n, sizeof *v, cmp);
  for (size_t k = 1; k < bins; k++) {
    double e = v[k * n / bins];
    if (c->nedges == 0 || e > c->edges[c->nedges - 1]) c->edges[c->nedges++] = e;
  }
  uint64_t counts[MAX_BINS + 1] = {0};
  for (size_t i = 0; i < n; i++) counts[bin_of(c, v[i])]++;
  for (size_t b = 0; b <= c->nedges; b++) c->ref[b] = (double)counts[b] / (double)n;
  free(v);
  return true;
}

void keel_destroy(void *p) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) free(s->cols[i].name);
  free(s->cols);
  free(s);
}

void *keel_create(const char *config, size_t len, const keel_batch *ref, keel_error *err) {
  static const char *const keys[] = {"columns", "bins", "threshold", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  char **names = NULL;
  size_t nnames = 0;
  double bins = 10, threshold = 0.2;
  bool ok = keel_config_strings(cfg, "columns", &names, &nnames, err) &&
            keel_config_number(cfg, "bins", &bins, err) && keel_config_number(cfg, "threshold", &threshold, err);
  keel_config_free(cfg);
  if (ok && (bins < 2 || bins > MAX_BINS || bins != floor(bins)))
    ok = keel_fail(err, KEEL_INVALID_CONFIG, "bins", "`bins` must be an integer from 2 to %d", MAX_BINS);
  if (ok && !(threshold > 0)) ok = keel_fail(err, KEEL_INVALID_CONFIG, "threshold", "`threshold` must be above 0");
  state *s = calloc(1, sizeof *s);
  s->threshold = threshold;
  s->cols = calloc(keel_batch_ncols(ref) + nnames + 1, sizeof *s->cols);
  if (ok && nnames == 0) { /* every numeric column of the reference */
    for (size_t c = 0; c < keel_batch_ncols(ref); c++) {
      const keel_column *col = keel_batch_col(ref, c);
      if (!keel_is_numeric(col)) continue;
      keel_str name = keel_col_name(col);
      s->cols[s->n++].name = strndup(name.ptr, name.len);
    }
    if (s->n == 0) ok = keel_fail(err, KEEL_INVALID_REFERENCE, NULL, "the reference has no numeric columns");
  }
  for (size_t i = 0; i < nnames; i++) {
    if (ok) s->cols[s->n++].name = strdup(names[i]);
    free(names[i]);
  }
  free(names);
  for (size_t i = 0; ok && i < s->n; i++) {
    const keel_column *col = keel_column_named(ref, s->cols[i].name);
    if (!col || !keel_is_numeric(col))
      ok = keel_fail(err, KEEL_INVALID_REFERENCE, s->cols[i].name, "the reference has no numeric column `%s`", s->cols[i].name);
    else
      ok = fit(&s->cols[i], col, keel_batch_rows(ref), (size_t)bins, err);
  }
  if (!ok) {
    keel_destroy(s);
    return NULL;
  }
  return s;
}

bool keel_observe(void *p, const keel_batch *in, keel_error *err) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) {
    const keel_column *c = keel_column_named(in, s->cols[i].name);
    if (!c || !keel_is_numeric(c))
      return keel_fail(err, KEEL_INVALID_INPUT, s->cols[i].name, "no numeric column `%s`", s->cols[i].name);
  }
  for (size_t i = 0; i < s->n; i++) {
    const keel_column *c = keel_column_named(in, s->cols[i].name);
    for (size_t r = 0; r < keel_batch_rows(in); r++)
      if (keel_valid(c, r) && !isnan(keel_number(c, r))) s->cols[i].counts[bin_of(&s->cols[i], keel_number(c, r))]++;
  }
  s->rows += keel_batch_rows(in);
  return true;
}

bool keel_report(void *p, keel_report_t *r, keel_error *err) {
  (void)err;
  state *s = p;
  size_t drifted = 0;
  char list[2048] = "";
  for (size_t i = 0; i < s->n; i++) {
    column *c = &s->cols[i];
    uint64_t total = 0;
    for (size_t b = 0; b <= c->nedges; b++) total += c->counts[b];
    double psi = 0;
    if (total) {
      for (size_t b = 0; b <= c->nedges; b++) {
        double q = (double)c->counts[b] / (double)total, pr = c->ref[b];
        if (q < EMPTY) q = EMPTY;
        if (pr < EMPTY) pr = EMPTY;
        psi += (q - pr) * log(q / pr);
      }
    }
    bool alert = psi > s->threshold;
    if (alert) {
      if (drifted++) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, c->name, sizeof list - strlen(list) - 1);
    }
    keel_metric(r, c->name, "psi", psi, s->threshold, alert);
  }
  keel_report_set(r, s->rows, drifted > 0);
  keel_summary(r, "%zu of %zu columns drifted (PSI > %g)%s%s", drifted, s->n, s->threshold, drifted ? ": " : "", list);
  return true;
}

/* Snapshot: rows, then each column's counts, as little-endian u64 words. */
bool keel_snapshot(void *p, keel_bytes *out, keel_error *err) {
  (void)err;
  state *s = p;
  size_t words = 1;
  for (size_t i = 0; i < s->n; i++) words += s->cols[i].nedges + 1;
  uint64_t *w = malloc(words * sizeof *w);
  size_t k = 0;
  w[k++] = s->rows;
  for (size_t i = 0; i < s->n; i++)
    for (size_t b = 0; b <= s->cols[i].nedges; b++) w[k++] = s->cols[i].counts[b];
  out->ptr = (uint8_t *)w;
  out->len = words * sizeof *w;
  return true;
}

bool keel_restore(void *p, const uint8_t *bytes, size_t len, keel_error *err) {
  state *s = p;
  size_t words = 1;
  for (size_t i = 0; i < s->n; i++) words += s->cols[i].nedges + 1;
  if (len != words * sizeof(uint64_t)) return keel_fail(err, KEEL_INVALID_STATE, NULL, "not a psi-monitor snapshot for these columns and bins");
  const uint8_t *q = bytes;
  memcpy(&s->rows, q, 8);
  q += 8;
  for (size_t i = 0; i < s->n; i++)
    for (size_t b = 0; b <= s->cols[i].nedges; b++, q += 8) memcpy(&s->cols[i].counts[b], q, 8);
  return true;
}
