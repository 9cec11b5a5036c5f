/* `{{name}}`: multiplies a numeric column by a factor (nulls stay null). */
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "{{name}}", "0.1.0", "Multiplies a numeric column by a factor.",
    "{\"type\":\"object\",\"properties\":{\"column\":{\"type\":\"string\"},\"factor\":{\"type\":\"number\"}},"
    "\"required\":[\"column\"],\"additionalProperties\":false}"};

typedef struct {
  char *column;
  double factor;
} state;

void *keel_create(const char *config, size_t len, const keel_batch *reference, keel_error *err) {
  (void)reference;
  static const char *const keys[] = {"column", "factor", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  state *s = calloc(1, sizeof *s);
  s->factor = 2.0;
  bool ok = keel_config_string(cfg, "column", &s->column, err) && keel_config_number(cfg, "factor", &s->factor, err);
  keel_config_free(cfg);
  if (ok && !s->column) ok = keel_fail(err, KEEL_INVALID_CONFIG, "column", "`column` is required");
  if (!ok) {
    keel_destroy(s);
    return NULL;
  }
  return s;
}

void keel_destroy(void *p) {
  state *s = p;
  free(s->column);
  free(s);
}

bool keel_process(void *p, keel_batch *in, keel_batch *out, keel_error *err) {
  state *s = p;
  const keel_column *c = keel_column_named(in, s->column);
  if (!c) return keel_fail(err, KEEL_INVALID_INPUT, s->column, "missing column `%s`", s->column);
  if (!keel_is_numeric(c)) return keel_fail(err, KEEL_INVALID_INPUT, s->column, "column `%s` is not numeric", s->column);
  for (size_t i = 0; i < keel_batch_ncols(in); i++) {
    const keel_column *col = keel_batch_col(in, i);
    if (col != c) {
      keel_pass(out, in, i);
      continue;
    }
    keel_column *o = keel_add(out, s->column, KEEL_F64);
    for (size_t r = 0; r < keel_batch_rows(in); r++) {
      if (keel_valid(c, r))
        keel_f64_mut(o)[r] = keel_number(c, r) * s->factor;
      else
        keel_set_null(o, r);
    }
  }
  return true;
}
