/*
 * gadget-run-seccomp MODE NRS CMD [ARG...]: install a seccomp allow-list with
 * libseccomp, then exec CMD under it. The workload launcher of a recipe's
 * `seccomp:` (src/runner/seccomp.ts): the runner has already parsed and
 * checked the profile (JSON, names, architecture) and passes only what the
 * filter needs, so nothing here parses untrusted text beyond two numbers.
 *
 *   MODE  log   — a syscall outside the list succeeds and is logged (SCMP_ACT_LOG)
 *         errno — it fails with EPERM (SCMP_ACT_ERRNO(EPERM))
 *   NRS   the allowed x86-64 syscall numbers, comma-separated, in decimal
 *
 * A syscall of another ABI (ia32, x32) is outside the list too: it gets the
 * mode's action, not libseccomp's default kill. no_new_privs is set (an
 * unprivileged process may only install a filter that way), so setuid
 * programs gain nothing under the profile. Exit 125: the filter could not be
 * installed; 126/127: CMD could not be exec'd (as a shell says).
 */
#include <errno.h>
#include <limits.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "gadget-run-seccomp"

static int fail(const char *what, int err)
{
	fprintf(stderr, NAME ": %s: %s\n", what, strerror(err));
	return 125;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: " NAME " log|errno NR[,NR...] CMD [ARG...]\n");
		return 125;
	}
	uint32_t action;
	if (!strcmp(argv[1], "log"))
		action = SCMP_ACT_LOG;
	else if (!strcmp(argv[1], "errno"))
		action = SCMP_ACT_ERRNO(EPERM);
	else {
		fprintf(stderr, NAME ": unknown mode \"%s\" (log or errno)\n", argv[1]);
		return 125;
	}
	scmp_filter_ctx ctx = seccomp_init(action);
	if (!ctx) return fail("seccomp_init", EINVAL);
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, action);
	if (rc < 0) return fail("seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH)", -rc);
	int allowed = 0;
	for (char *p = argv[2]; *p;) {
		char *end;
		errno = 0;
		long nr = strtol(p, &end, 10);
		if (end == p || errno || nr < 0 || nr > 1023 || (*end && *end != ',')) {
			fprintf(stderr, NAME ": bad syscall number list at \"%.20s\"\n", p);
			return 125;
		}
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, (int)nr, 0);
		if (rc < 0) {
			char what[64];
			snprintf(what, sizeof(what), "allow syscall %ld", nr);
			return fail(what, -rc);
		}
		allowed++;
		p = *end ? end + 1 : end;
	}
	if (!allowed) {
		fprintf(stderr, NAME ": no syscall allowed\n");
		return 125;
	}
	rc = seccomp_load(ctx);
	if (rc < 0) return fail("seccomp_load", -rc);
	seccomp_release(ctx);
	execvp(argv[3], argv + 3);
	int err = errno;
	fprintf(stderr, NAME ": exec %s under the profile: %s%s\n", argv[3], strerror(err),
		err == EPERM ? " (the profile must allow execve)" : "");
	return err == ENOENT ? 127 : 126;
}
