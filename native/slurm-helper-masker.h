/*
 * The streaming secret masker of src/util/secret-mask.ts (and of the Node
 * helper's member-masker.mjs), in C for troupe-slurm-helper: every secret
 * becomes "[MASKED]"; an end of a chunk that could begin a secret is held back
 * for the next. Same results on the same inputs, however the stream is cut.
 */
#ifndef TROUPE_SLURM_HELPER_MASKER_H
#define TROUPE_SLURM_HELPER_MASKER_H

#include <stddef.h>

struct masker;

/* A masker of these secrets (those of fewer than 8 characters are left alone, as troupe's own masker does). */
struct masker *masker_new(const char *const *secrets, size_t count);
/* The next chunk: what can be written now goes to out (malloc'd, *out_len bytes; free it). */
void masker_push(struct masker *masker, const char *chunk, size_t len, char **out, size_t *out_len);
/* The end of the stream: the held-back rest. */
void masker_end(struct masker *masker, char **out, size_t *out_len);
void masker_free(struct masker *masker);

#endif
