/* Run devwire-sim as a subprocess: start it on a loopback port 0, read its
 * "listening on HOST:PORT" line (or a serial device's "serial on PATH"), signal it, stop it,
 * collect its exit status and everything it wrote on stdout and stderr. The simulator is started
 * with dw_test_child_fork (child.h): it never outlives the test process, even one that crashes or
 * is killed; start it on the test's own (main) thread. */
#ifndef DW_TEST_SIM_PROC_H
#define DW_TEST_SIM_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include <devwire/devwire.h>

typedef struct dw_sim_proc {
    pid_t pid; /* 0 once reaped */
    int out_fd, err_fd;
    dw_buf out, err; /* what it wrote so far (NUL-terminated for printing) */
    char host[64];
    uint16_t port;
    char tty[64]; /* a serial device's terminal, from "serial on PATH" */
    int status;   /* exit code, or 128 + signal; -1 while running */
} dw_sim_proc;

/* The devwire-sim built with the tests (DW_SIM_PATH), or NULL. */
const char *dw_sim_proc_path(void);

/* Start devwire-sim with args (NULL-terminated, program name excluded) and,
 * if `wait_listen`, wait up to timeout_ms for its first readiness line:
 * "listening on HOST:PORT" (host and port filled) or, for a serial device,
 * "serial on PATH" (tty filled). DW_OK, DW_ETIMEDOUT, DW_EOF (it exited first:
 * status and output are collected) or -errno. Always free with
 * dw_sim_proc_free. */
int dw_sim_proc_start(dw_sim_proc *p, const char *const *args, int wait_listen, int timeout_ms);
/* Start and wait for it to exit (--validate, --help, bad scripts...).
 * Returns the exit status, or -1 if it did not exit within timeout_ms
 * (then it is killed). */
int dw_sim_proc_run(dw_sim_proc *p, const char *const *args, int timeout_ms);
/* Send a signal. */
int dw_sim_proc_kill(dw_sim_proc *p, int sig);
/* Wait up to timeout_ms for the process to exit, collecting its output.
 * Returns the exit status or -1 on timeout. */
int dw_sim_proc_wait(dw_sim_proc *p, int timeout_ms);
/* SIGTERM, then wait (SIGKILL after timeout_ms). Returns the exit status. */
int dw_sim_proc_stop(dw_sim_proc *p, int timeout_ms);
/* Wait until stderr (err = 1) or stdout (err = 0) contains `needle`.
 * 1 found, 0 not within timeout_ms. */
int dw_sim_proc_wait_output(dw_sim_proc *p, int err, const char *needle, int timeout_ms);
/* Occurrences of `needle` in `hay` (log lines in the output). */
size_t dw_sim_count(const char *hay, const char *needle);
/* Resident set size of the running simulator in KiB (VmRSS in
 * /proc/PID/status), or -1. */
long dw_sim_proc_rss_kib(const dw_sim_proc *p);
/* Kill if still running, reap, close, free buffers. */
void dw_sim_proc_free(dw_sim_proc *p);

/* Write `text` to a new temporary file named after `tag`; returns the path
 * (caller frees) or NULL. */
char *dw_sim_temp_file(const char *tag, const char *text);

/* The whole of a file, NUL-terminated (caller frees), its length in *len
 * (len may be NULL); NULL if it cannot be read. */
char *dw_sim_read_file(const char *path, size_t *len);

/* Write `script` (JSON text) to a temporary file, start devwire-sim on
 * 127.0.0.1:0 with it and `extra` args (NULL-terminated, may be NULL), and
 * wait for it to listen. *path gets the script's file (caller unlinks and
 * frees; may be NULL). DW_OK or as dw_sim_proc_start. */
int dw_sim_proc_serve(dw_sim_proc *p, const char *tag, const char *script, const char *const *extra,
                      char **path);

/* A test client: one TCP session to the simulator and the framing to talk
 * with it. */
typedef struct dw_sim_client {
    dw_client *client;
    dw_session *session;
    dw_marshaller *m; /* owned */
    dw_buf reply;     /* the last reply, NUL-terminated */
    dw_error err;
} dw_sim_client;

/* Connect to 127.0.0.1:port with a read timeout; `m` is taken (freed with
 * the client). DW_OK or an error (err says what). */
int dw_sim_client_open(dw_sim_client *c, uint16_t port, dw_marshaller *m, int timeout_ms);
/* Send one framed request payload (text). */
int dw_sim_client_send(dw_sim_client *c, const void *p, size_t n);
/* Read one reply frame into c->reply. */
int dw_sim_client_recv(dw_sim_client *c);
/* Send text, read the reply: returns the reply text (borrowed until the next
 * call) or NULL on error (c->err). */
const char *dw_sim_client_ask(dw_sim_client *c, const char *request);
/* Read exactly n raw bytes (a banner, a prompt) into c->reply. */
int dw_sim_client_recv_raw(dw_sim_client *c, size_t n);
void dw_sim_client_close(dw_sim_client *c);

/* A plain TCP socket connected to 127.0.0.1:port (rcvbuf > 0: that
 * SO_RCVBUF first), or -1. */
int dw_sim_raw_connect(uint16_t port, int rcvbuf);

#endif
