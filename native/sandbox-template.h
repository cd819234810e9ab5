/* Sandboxes started from a template mount namespace: see sandbox-template.c. */
#ifndef TROUPE_SANDBOX_TEMPLATE_H
#define TROUPE_SANDBOX_TEMPLATE_H

#include "sandbox.h"

typedef struct sandbox_template sandbox_template_t;
/* One sandbox's mount points in its template's shared tmpfs, held until it ends. */
typedef struct template_use template_use_t;

/* In the spawner at start-up: whether templates are used (TROUPE_SANDBOX_TEMPLATE=0: never). */
void sandbox_templates_init(void);
/*
 * In the spawner, per sandbox: its template (made on first use), or NULL when
 * this sandbox is built whole (it cannot start from one, or its template could
 * not be made).
 */
sandbox_template_t *sandbox_template_for(const sandbox_t *box);
/* In the spawner, before the clone: the mount points of the sandbox's binds in the template's hidden directories. */
template_use_t *sandbox_template_use(sandbox_template_t *template, const sandbox_t *box, const char **error);
/* In the spawner, once the sandbox has ended (or did not start): its mount points go when no other sandbox uses them. */
void sandbox_template_release(template_use_t *use);
/* The template's mount namespace (an fd the sandbox's child takes with it). */
int sandbox_template_fd(const sandbox_template_t *template);
/* In the sandbox's child (new PID, UTS, IPC namespaces, not yet mount): as sandbox_init, from `template_fd`. */
void sandbox_init_from_template(sandbox_t *box, int template_fd) __attribute__((noreturn));

#endif
