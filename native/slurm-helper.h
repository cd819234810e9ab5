/*
 * troupe-slurm-helper: the member helper of a Slurm member in troupe's host
 * sandbox, in C (what src/runtime/slurm/member-helper.mjs does for such a
 * member, with the same protocol, without Node.js on the node). Shared state
 * of its parts: slurm-helper.c (the connection to troupe and the event loop),
 * slurm-helper-sandbox.c (the member's bwrap), slurm-helper-masker.c (secrets
 * masked in its output).
 */
#ifndef TROUPE_SLURM_HELPER_H
#define TROUPE_SLURM_HELPER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "slurm-helper-masker.h"

/* The helper's timers (deadlines on the monotonic clock, 0 when unset). */
enum helper_timer {
  TIMER_RECONNECT, /* connect again, to whatever the listener file names */
  TIMER_ORPHAN,    /* troupe gone too long: the command ends (runs that do not keep their tasks) */
  TIMER_GRACE,     /* a stop's grace is over: the sandbox is killed */
  TIMER_CONFIRM,   /* a killed sandbox did not end: bwrap itself is killed */
  TIMER_FINISH,    /* a SIGTERM nobody asked for: Slurm's signal may still come */
  TIMER_COUNT,
};

/* One member's helper: who it is, and where its sandbox is. */
struct helper {
  /* From the members file and the run's directory. */
  char *key, *dir, *run_dir, *token, *job;
  bool keep;

  /* The connection to troupe's listener (-1: none); connecting until connected. */
  int sock;
  bool connected;
  char *in;
  size_t in_len, in_cap;

  /* The launch troupe sent (NULL until then): { sandbox: [bwrap, ...], logPath, secrets, orphanMs, graceMs }. */
  json_t *launch;
  /* bwrap, started at the launch (0: not started); reaped once it has ended. */
  pid_t sandbox;
  bool sandbox_reaped;
  int sandbox_status;
  /* bwrap's status channel (fd 3 in bwrap), barrier (fd 4), and the output pipes when masking (-1: closed). */
  int status_fd, block_fd, out_fd, err_fd;
  char *status_buf;
  size_t status_len, status_cap;
  /* The log, when the output comes through the helper (masked). */
  int log_fd;
  struct masker *masker;
  /* The sandbox's PID 1 (bwrap's child-pid; 0 until it says): the command is its child. */
  pid_t sandbox_pid;
  char *start_error;

  bool released, killed, stop_asked, signalled_by_slurm;
  /* The command's exit code as bwrap's status said it, and the member's (-1: none yet). */
  int command_exit, exit_status;
  /* A finish waiting for Slurm's signal (TIMER_FINISH): its status and error. */
  int pending_status;
  char *pending_error;

  int64_t timers[TIMER_COUNT];
};

extern struct helper H;

/* slurm-helper.c */
int64_t monotonic_ms(void);
int64_t wall_ms(void);
void set_timer(enum helper_timer timer, int64_t in_ms);
void send_message(json_t *message); /* takes the reference; dropped when not connected */
void say_state(void);
void fail(const char *message);
void end_helper(void) __attribute__((noreturn));
const char *node_name(void);
/* A file in the member's directory (for the batch script and troupe to see); ignored when it cannot be written. */
void mark(const char *name, const char *text);

/* slurm-helper-sandbox.c */
void prepare(json_t *launch);
void sandbox_readable(int fd);
void sandbox_reap(void);
void release_command(void);
void stop_member(int64_t grace_ms);
void kill_sandbox(void);
void confirm_kill(void);
void finish_waited(void);
void slurm_sigterm(void);
void sandbox_maybe_ended(void);

#endif
