/* The keeper of one task attempt that outlives troupe: see keeper.c. */
#ifndef TROUPE_KEEPER_H
#define TROUPE_KEEPER_H

#include "sandbox.h"

typedef struct {
  const char *state_dir; /* exit (written once, when the task has ended) and control (a FIFO) live here */
  int devnull;
  int log_fd;       /* the task's stdout and stderr */
  int status_write; /* to the spawner: the task's status lines, relayed */
  int block_read;   /* from the spawner: "go" releases the task; EOF before it stops the task */
  sandbox_t *box;   /* troupe's own sandbox, or NULL: */
  char **argv;      /* the command to run as it is */
} keeper_t;

/* In a fresh fork of the spawner: become the task's keeper. Never returns. */
void keeper_main(const keeper_t *keeper) __attribute__((noreturn));

#endif
