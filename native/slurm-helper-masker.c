/*
 * The streaming secret masker (slurm-helper-masker.h): a port of
 * src/runtime/slurm/member-masker.mjs, step for step, so that the two helpers
 * mask alike (test/runtime/slurm-masker.test.ts holds both to
 * src/util/secret-mask.ts).
 */
#define _GNU_SOURCE
#include "slurm-helper-masker.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char MASK[] = "[MASKED]";
/* Secrets shorter than this (in characters) are not masked: they would mask ordinary words. */
enum { MIN_SECRET_CHARS = 8 };

struct secret {
  char *bytes;
  size_t len;
};

struct masker {
  struct secret *secrets; /* longest first */
  size_t count;
  size_t carry_len_max;
  char *carry;
  size_t carry_len;
};

/* A growing byte buffer. */
struct bytes {
  char *data;
  size_t len, cap;
};

static void append(struct bytes *b, const char *data, size_t len) {
  if (len == 0) return;
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2 + 64;
    b->data = realloc(b->data, b->cap);
    if (!b->data) abort();
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

/* Characters (code points) of UTF-8 text: the bytes that do not continue a character. */
static size_t characters(const char *text) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    if ((*p & 0xC0) != 0x80) n++;
  return n;
}

/* JavaScript's Buffer.indexOf: the first occurrence at or after `from`, or -1. */
static long index_of(const char *data, size_t len, const struct secret *s, size_t from) {
  if (from > len) return -1;
  const char *found = memmem(data + from, len - from, s->bytes, s->len);
  return found ? (long)(found - data) : -1;
}

static int longer_first(const void *a, const void *b) {
  const struct secret *x = a, *y = b;
  return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

struct masker *masker_new(const char *const *values, size_t count) {
  struct masker *m = calloc(1, sizeof *m);
  if (!m) abort();
  m->secrets = calloc(count ? count : 1, sizeof *m->secrets);
  if (!m->secrets) abort();
  for (size_t i = 0; i < count; i++) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++) seen = strcmp(values[i], values[j]) == 0;
    if (seen || characters(values[i]) < MIN_SECRET_CHARS) continue;
    m->secrets[m->count].bytes = strdup(values[i]);
    m->secrets[m->count].len = strlen(values[i]);
    m->count++;
  }
  /* A stable order for equal lengths, as JavaScript's sort: insertion sort. */
  for (size_t i = 1; i < m->count; i++)
    for (size_t j = i; j > 0 && longer_first(&m->secrets[j - 1], &m->secrets[j]) > 0; j--) {
      struct secret t = m->secrets[j];
      m->secrets[j] = m->secrets[j - 1];
      m->secrets[j - 1] = t;
    }
  m->carry_len_max = m->count ? m->secrets[0].len - 1 : 0;
  return m;
}

/* Masks data up to `limit` (a secret must begin before it); returns where the unmasked rest begins. */
static size_t run(const struct masker *m, const char *data, size_t len, size_t limit, struct bytes *out) {
  size_t at = 0;
  for (;;) {
    long found = -1;
    size_t length = 0;
    for (size_t i = 0; i < m->count; i++) {
      long index = index_of(data, len, &m->secrets[i], at);
      if (index >= 0 && (found < 0 || index < found)) {
        found = index;
        length = m->secrets[i].len;
      }
    }
    if (found < 0 || (size_t)found >= limit) break;
    append(out, data + at, (size_t)found - at);
    append(out, MASK, sizeof MASK - 1);
    at = (size_t)found + length;
    /* Secrets that overlap the masked stretch go with it, whole. */
    for (bool grown = true; grown;) {
      grown = false;
      for (size_t i = 0; i < m->count; i++) {
        long index = index_of(data, len, &m->secrets[i], (size_t)found + 1);
        if (index >= 0 && (size_t)index < at && (size_t)index + m->secrets[i].len > at) {
          at = (size_t)index + m->secrets[i].len;
          grown = true;
        }
      }
    }
  }
  size_t next = at > limit ? at : limit;
  if (next > at) append(out, data + at, next - at);
  return next;
}

/* How many bytes at the end of data could begin a secret (held back). */
static size_t unfinished(const struct masker *m, const char *data, size_t len) {
  for (size_t k = m->carry_len_max < len ? m->carry_len_max : len; k > 0; k--)
    for (size_t i = 0; i < m->count; i++)
      if (m->secrets[i].len > k && memcmp(m->secrets[i].bytes, data + len - k, k) == 0) return k;
  return 0;
}

static void hand_over(struct bytes *b, char **out, size_t *out_len) {
  *out = b->data ? b->data : malloc(1);
  *out_len = b->len;
}

void masker_push(struct masker *m, const char *chunk, size_t len, char **out, size_t *out_len) {
  struct bytes result = {0};
  if (m->count == 0) {
    append(&result, chunk, len);
    return hand_over(&result, out, out_len);
  }
  struct bytes data = {0};
  append(&data, m->carry, m->carry_len);
  append(&data, chunk, len);
  size_t next = run(m, data.data, data.len, data.len - unfinished(m, data.data, data.len), &result);
  free(m->carry);
  m->carry_len = data.len - next;
  m->carry = malloc(m->carry_len ? m->carry_len : 1);
  if (!m->carry) abort();
  if (m->carry_len) memcpy(m->carry, data.data + next, m->carry_len);
  free(data.data);
  hand_over(&result, out, out_len);
}

void masker_end(struct masker *m, char **out, size_t *out_len) {
  struct bytes result = {0};
  if (m->carry_len) run(m, m->carry, m->carry_len, m->carry_len, &result);
  m->carry_len = 0;
  hand_over(&result, out, out_len);
}

void masker_free(struct masker *m) {
  for (size_t i = 0; i < m->count; i++) free(m->secrets[i].bytes);
  free(m->secrets);
  free(m->carry);
  free(m);
}
