/* The conformance transform in C (tests/conformance/README.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

const keel_info KEEL_PLUGIN = {
    "conformance-transform", "0.1.0", "The cross-language conformance transform (C).",
    "{\"type\":\"object\",\"properties\":{\"offset\":{\"type\":\"number\"},\"probe\":{\"enum\":[\"read-file\",\"loop\",\"grow\"]},\"path\":{\"type\":\"string\"}},\"additionalProperties\":false}"};

typedef struct {
  double offset;
  char *probe;
  char *path;
} state;

void *keel_create(const char *config, size_t len, const keel_batch *reference, keel_error *err) {
  (void)reference;
  static const char *const keys[] = {"offset", "probe", "path", NULL};
  keel_config *cfg = keel_config_parse(config, len, keys, err);
  if (!cfg) return NULL;
  state *s = calloc(1, sizeof *s);
  s->offset = 1.0;
  bool ok = keel_config_number(cfg, "offset", &s->offset, err) &&
            keel_config_string(cfg, "probe", &s->probe, err) &&
            keel_config_string(cfg, "path", &s->path, err);
  keel_config_free(cfg);
  if (!ok) {
    keel_destroy(s);
    return NULL;
  }
  return s;
}

void keel_destroy(void *p) {
  state *s = p;
  free(s->probe);
  free(s->path);
  free(s);
}

/* Sandbox probes: read a file, loop forever, grow memory until refused. */
static bool probe(state *s, keel_batch *out, keel_error *err) {
  if (strcmp(s->probe, "read-file") == 0) {
    FILE *f = fopen(s->path ? s->path : "", "r");
    if (!f) return keel_fail(err, KEEL_INVALID_INPUT, NULL, "cannot read %s: %s", s->path, strerror(errno));
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    keel_out_rows(out, 1);
    keel_set_string(keel_add(out, "content", KEEL_STRING), 0, buf, n);
    return true;
  }
  if (strcmp(s->probe, "loop") == 0) {
    volatile unsigned long n = 0;
    for (;;) n++;
  }
  if (strcmp(s->probe, "grow") == 0) {
    /* Chained through a global so the compiler cannot drop the allocations. */
    static void *volatile hoard;
    for (;;) {
      void **p = malloc(1 << 20);
      if (!p) abort();
      memset(p, 1, 1 << 20);
      *p = hoard;
      hoard = p;
    }
  }
  return keel_fail(err, KEEL_INVALID_CONFIG, "probe", "unknown probe `%s`", s->probe);
}

/* Appends the code points of `s` in reverse order to `out`. */
static size_t reverse_utf8(const char *s, size_t len, char *out) {
  size_t o = 0, end = len;
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
    memcpy(out + o, s + start, end - start);
    o += end - start;
    end = start;
  }
  return o;
}

bool keel_process(void *p, keel_batch *in, keel_batch *out, keel_error *err) {
  state *s = p;
  if (s->probe) return probe(s, out, err);
  if (keel_column_named(in, "nulls"))
    return keel_fail(err, KEEL_INVALID_INPUT, "nulls", "the input already has a column `nulls`");
  size_t rows = keel_batch_rows(in);
  int64_t *nulls = calloc(rows ? rows : 1, sizeof *nulls);
  for (size_t c = 0; c < keel_batch_ncols(in); c++) {
    const keel_column *col = keel_batch_col(in, c);
    keel_str name = keel_col_name(col);
    keel_type t = keel_col_type(col);
    keel_column *o = keel_add_n(out, name.ptr, name.len, t);
    for (size_t i = 0; i < rows; i++) {
      if (!keel_valid(col, i)) {
        nulls[i]++;
        keel_set_null(o, i);
        continue;
      }
      switch (t) {
        case KEEL_F64: keel_f64_mut(o)[i] = 2.0 * keel_f64s(col)[i] + s->offset; break;
        case KEEL_F32: keel_f32_mut(o)[i] = (float)(2.0 * (double)keel_f32s(col)[i] + s->offset); break;
        case KEEL_S64: keel_s64_mut(o)[i] = (int64_t)((uint64_t)keel_s64s(col)[i] * 2u); break;
        case KEEL_BOOL: keel_bool_mut(o)[i] = !keel_bools(col)[i]; break;
        case KEEL_STRING: {
          keel_str v = keel_string(col, i);
          char *r = malloc(v.len ? v.len : 1);
          size_t n = reverse_utf8(v.ptr, v.len, r);
          keel_set_string(o, i, r, n);
          free(r);
          break;
        }
      }
    }
  }
  keel_column *n = keel_add(out, "nulls", KEEL_S64);
  memcpy(keel_s64_mut(n), nulls, rows * sizeof *nulls);
  free(nulls);
  return true;
}
