/* `log-transform`: replaces numeric columns by log1p(x) (f64), for skewed
 * features such as amounts and counts. A value <= -1 has no logarithm: an
 * invalid-input error naming the column and row. Nulls stay null. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "log-transform", "0.1.0", "Replaces numeric columns by log1p(x); values <= -1 are refused naming the row.",
    "{\"type\":\"object\",\"properties\":{\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1}},"
    "\"required\":[\"columns\"],\"additionalProperties\":false}"};

typedef struct {
  char **columns;
  size_t n;
} state;

void *keel_create(const char *config, size_t len, const keel_batch *reference, keel_error *err) {
  (void)reference;
  static const char *const keys[] = {"columns", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  state *s = calloc(1, sizeof *s);
  bool ok = keel_config_strings(cfg, "columns", &s->columns, &s->n, err);
  keel_config_free(cfg);
  if (ok && s->n == 0) ok = keel_fail(err, KEEL_INVALID_CONFIG, "columns", "`columns` must name at least one column");
  if (!ok) {
    keel_destroy(s);
    return NULL;
  }
  return s;
}

void keel_destroy(void *p) {
  state *s = p;
  for (size_t i = 0; i < s->n; i++) free(s->columns[i]);
  free(s->columns);
  free(s);
}

bool keel_process(void *p, keel_batch *in, keel_batch *out, keel_error *err) {
  state *s = p;
  size_t rows = keel_batch_rows(in);
  for (size_t k = 0; k < s->n; k++) {
    const keel_column *c = keel_column_named(in, s->columns[k]);
    if (!c) return keel_fail(err, KEEL_INVALID_INPUT, s->columns[k], "missing column `%s`", s->columns[k]);
    if (!keel_is_numeric(c)) return keel_fail(err, KEEL_INVALID_INPUT, s->columns[k], "column `%s` is not numeric", s->columns[k]);
    for (size_t i = 0; i < rows; i++) {
      if (keel_valid(c, i) && keel_number(c, i) <= -1.0)
        return keel_fail(err, KEEL_INVALID_INPUT, s->columns[k], "column `%s` row %zu: %g has no log1p", s->columns[k], i, keel_number(c, i));
    }
  }
  /* Every column in order; the configured ones replaced. */
  for (size_t c = 0; c < keel_batch_ncols(in); c++) {
    keel_str name = keel_col_name(keel_batch_col(in, c));
    bool chosen = false;
    for (size_t k = 0; k < s->n; k++)
      if (strlen(s->columns[k]) == name.len && memcmp(s->columns[k], name.ptr, name.len) == 0) chosen = true;
    if (!chosen) {
      keel_pass(out, in, c);
      continue;
    }
    const keel_column *col = keel_batch_col(in, c);
    keel_column *o = keel_add_n(out, name.ptr, name.len, KEEL_F64);
    for (size_t i = 0; i < rows; i++) {
      if (keel_valid(col, i))
        keel_f64_mut(o)[i] = log1p(keel_number(col, i));
      else
        keel_set_null(o, i);
    }
  }
  return true;
}
