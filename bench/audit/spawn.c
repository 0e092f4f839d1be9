/*
 * spawn: run a command N times and print, per run, its wall time, peak
 * resident set size and CPU time (user + system), as
 * "wall_seconds max_rss_kib cpu_seconds" on one line. CPU time is the figure
 * least disturbed by other load on the machine.
 *
 *   spawn [-n N] [-k] -- COMMAND [ARG...]
 *
 * -n N  number of runs (default 1)
 * -k    keep the command's stdout (default: stdout goes to /dev/null)
 *
 * Why a C program: a child's ru_maxrss starts at the RSS its parent had when
 * it forked (and, with vfork as Python's subprocess and Go's os/exec use,
 * the parent's whole high-water mark is charged to the child at exec). A
 * Python harness adds ~10 MiB to every child's peak; this launcher is ~1 MiB,
 * the same floor as /usr/bin/time, and times with CLOCK_MONOTONIC instead of
 * /usr/bin/time's 10 ms resolution. The wall time covers fork, exec, the
 * whole run of the child and its exit: process start-up is included.
 *
 * Exit status: 0 when every run exited 0, 1 otherwise, 2 on a usage error.
 * Built by run.sh into $BENCH_DIR/bin; nothing here is part of qinsaudit.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	int runs = 1, keep = 0, opt;
	while ((opt = getopt(argc, argv, "+n:k")) != -1) {
		switch (opt) {
		case 'n':
			runs = atoi(optarg);
			break;
		case 'k':
			keep = 1;
			break;
		default:
			fprintf(stderr, "usage: spawn [-n N] [-k] -- COMMAND [ARG...]\n");
			return 2;
		}
	}
	if (optind >= argc || runs < 1) {
		fprintf(stderr, "usage: spawn [-n N] [-k] -- COMMAND [ARG...]\n");
		return 2;
	}
	char **cmd = argv + optind;
	int failed = 0;
	for (int i = 0; i < runs; i++) {
		fflush(stdout);
		double start = now();
		pid_t pid = fork();
		if (pid < 0) {
			perror("spawn: fork");
			return 1;
		}
		if (pid == 0) {
			if (!keep) {
				int fd = open("/dev/null", O_WRONLY);
				if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
					perror("spawn: /dev/null");
					_exit(127);
				}
				close(fd);
			}
			execvp(cmd[0], cmd);
			perror("spawn: exec");
			_exit(127);
		}
		int status;
		struct rusage ru;
		if (wait4(pid, &status, 0, &ru) < 0) {
			perror("spawn: wait4");
			return 1;
		}
		double wall = now() - start;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn: run %d of %s: status 0x%x\n", i + 1, cmd[0], status);
			failed = 1;
		}
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		printf("%.6f %ld %.6f\n", wall, ru.ru_maxrss, cpu);
	}
	return failed;
}
