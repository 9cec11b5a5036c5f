/* `{{name}}`: one finding per null cell of the configured columns (all columns when none are named). */
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "{{name}}", "0.1.0", "Flags null cells.",
    "{\"type\":\"object\",\"properties\":{\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"additionalProperties\":false}"};

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

static bool chosen(const state *s, keel_str name) {
  if (s->n == 0) return true;
  for (size_t i = 0; i < s->n; i++)
    if (strlen(s->columns[i]) == name.len && memcmp(s->columns[i], name.ptr, name.len) == 0) return true;
  return false;
}

bool keel_validate(void *p, const keel_batch *in, keel_findings *out, keel_error *err) {
  (void)err;
  state *s = p;
  for (size_t c = 0; c < keel_batch_ncols(in); c++) {
    const keel_column *col = keel_batch_col(in, c);
    keel_str name = keel_col_name(col);
    if (!chosen(s, name)) continue;
    char *cname = strndup(name.ptr, name.len);
    for (size_t r = 0; r < keel_batch_rows(in); r++)
      if (!keel_valid(col, r)) keel_finding(out, "not-null", cname, (long)r, KEEL_SEVERITY_ERROR, "`%s` is null", cname);
    free(cname);
  }
  return true;
}
