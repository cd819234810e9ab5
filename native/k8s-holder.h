#ifndef TROUPE_K8S_HOLDER_H
#define TROUPE_K8S_HOLDER_H
/* troupe-init --kubernetes POD_INFO_DIR LAUNCH_DIR (k8s-holder.c): holds, then execs the launch; returns only on failure. */
int kubernetes_holder(const char *pod_info_dir, const char *launch_dir);
#endif
