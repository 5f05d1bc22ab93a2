/* devwire-sim over a serial line: a pseudo-terminal whose slave side
 * (/dev/pts/N, or a symbolic link to it) a driver opens as it would open
 * /dev/ttyUSB0.
 *
 * The line is one session for the whole run, as a real instrument's port
 * is: a driver that closes the port and opens it again finds the device
 * as it left it (state, position in the steps, a hang). The simulator keeps
 * a slave descriptor of its own open, so the master never sees the hangup
 * (EIO) that the last close of the slave would give; the price is that
 * what the device writes while no driver has the port open waits in the
 * line until a driver reads (or flushes) it.
 *
 * The master is watched with a uv_poll_t and read and written with
 * read(2)/write(2): a stream handle (uv_pipe_t, uv_tty_t) would write
 * everything it is given as fast as the line takes it, while "baud" must
 * release bytes a few at a time, and it would end the stream on the EIO a
 * pty master reports when no slave is open.
 *
 * With "baud", output goes out at baud/10 bytes a second (10 bits a byte),
 * released by a timer every PACE_MS. Faults: "close" and "reset" have no
 * connection to end and answer nothing (like "drop"); "hang" stops
 * answering for good (until a reload); "garbage" and "duplicate" as over
 * TCP. The banner is written once, when the line opens (power-on). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "device/outcome.h"
#include "device/server_serial.h"

#define PACE_MS 10

typedef struct sim_serial {
    uv_poll_t poll;
    uv_timer_t timer; /* a reply's delay and the pauses between its pieces */
    uv_timer_t pace;  /* releases bytes at the line rate ("baud") */
    int handles;      /* handles not closed yet */
    dw_sim_server *srv;
    int master, slave;
    char *link;
    uint64_t id;
    sim_gen *gen;
    dw_sim_session *sess;
    const dw_marshaller *dec_m; /* the marshaller `dec` was made for */
    dw_decoder *dec;
    dw_buf payload;
    dw_buf in; /* read from the line, not served yet */
    size_t in_at;
    dw_buf out; /* to write to the line */
    size_t out_at;
    dw_buf held;                 /* periodic messages held back while a reply's pieces go out */
    dw_sim_player play;          /* the outcome being carried out (on `timer`) */
    uint64_t bps;                /* bytes a second; 0 = as fast as the line takes them */
    uint64_t pace_t0, pace_sent; /* since the output queue last started */
    int pacing, blocked, events, failed;
    uint8_t rbuf[4096];
} sim_serial;

static void record(sim_serial *l, const char *dir, const uint8_t *p, size_t n, const char *match,
                   const char *peer)
{
    dw_sim_transcript_event(l->srv->transcript, l->srv->name, l->id, dir, p, n, match, peer);
}

/* ---- the line's output ---------------------------------------------------- */

static void flush(sim_serial *l);
static void on_poll(uv_poll_t *h, int status, int events);

static void update_poll(sim_serial *l)
{
    int want = (l->failed ? 0 : (l->play.phase == DW_SIM_PLAY_IDLE ? UV_READABLE : 0)) |
               (l->blocked ? UV_WRITABLE : 0);
    if (want == l->events)
        return;
    l->events = want;
    if (want)
        uv_poll_start(&l->poll, want, on_poll);
    else
        uv_poll_stop(&l->poll);
}

static void on_pace(uv_timer_t *t)
{
    flush(t->data);
}

/* How many bytes the line may take now: all, or what the rate allows. */
static size_t line_allows(sim_serial *l, size_t pending)
{
    if (!l->bps)
        return pending;
    uint64_t now = uv_now(l->pace.loop);
    if (!l->pacing) {
        l->pacing = 1;
        l->pace_t0 = now;
        l->pace_sent = 0;
        uv_timer_start(&l->pace, on_pace, PACE_MS, PACE_MS);
    }
    uint64_t due = (now - l->pace_t0) * l->bps / 1000 + 1; /* the first byte at once */
    uint64_t allow = due > l->pace_sent ? due - l->pace_sent : 0;
    return allow < pending ? (size_t)allow : pending;
}

/* Write what the line takes now. */
static void flush(sim_serial *l)
{
    size_t pending = l->out.len - l->out_at;
    size_t allow = pending ? line_allows(l, pending) : 0;
    l->blocked = 0;
    while (allow > 0) {
        ssize_t w = write(l->master, l->out.data + l->out_at, allow);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            l->blocked = 1;                    /* the driver is not reading: wait for room */
            l->pace_t0 = uv_now(l->pace.loop); /* and give no credit for the wait */
            l->pace_sent = 0;
            break;
        }
        if (w < 0) {
            dw__sim_log(l->srv, DW_LOG_WARN, "%s: write: %s; output dropped", l->srv->addr,
                        strerror(errno));
            l->out_at = l->out.len;
            break;
        }
        l->out_at += (size_t)w;
        l->pace_sent += (uint64_t)w;
        allow -= (size_t)w;
    }
    if (l->out_at == l->out.len) {
        dw_buf_clear(&l->out);
        l->out_at = 0;
        if (l->pacing)
            uv_timer_stop(&l->pace);
        l->pacing = 0;
    }
    update_poll(l);
}

static void send_bytes(sim_serial *l, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (dw_buf_append(&l->out, p, n) != DW_OK) {
        dw__sim_log(l->srv, DW_LOG_ERROR, "%s: out of memory, output dropped", l->srv->addr);
        return;
    }
    flush(l);
}

/* ---- carrying out an outcome ---------------------------------------------- */

static void pump(sim_serial *l);

static void play_write(dw_sim_player *p, const uint8_t *d, size_t n)
{
    send_bytes(p->owner, d, n);
}

/* The reply is out: held periodic messages follow. */
static void play_done(dw_sim_player *p, int replied)
{
    sim_serial *l = p->owner;
    if (replied && l->held.len) {
        send_bytes(l, l->held.data, l->held.len);
        dw_buf_clear(&l->held);
    }
}

static void play_resumed(dw_sim_player *p)
{
    pump(p->owner);
}

/* No connection to end: "close" and "reset" answer nothing. */
static const dw_sim_player_ops serial_play = {play_write, NULL,         NULL, NULL,
                                              play_done,  play_resumed, 0};

/* A session on the generation serving now; the decoder follows a new
 * request framing (called between frames, so nothing is lost). */
static int line_bind(sim_serial *l)
{
    int rc = dw__sim_bind(l->srv, &l->gen, &l->sess);
    const dw_marshaller *m = dw_sim_engine_request_marshaller(l->gen->engine);
    if (rc != DW_OK || (l->dec && l->dec_m == m))
        return rc;
    dw_decoder_free(l->dec);
    l->dec = dw_decoder_new(m);
    l->dec_m = l->dec ? m : NULL;
    return l->dec ? DW_OK : DW_ENOMEM;
}

/* One complete request in l->payload: decide, then act (now or later). */
static void handle_request(sim_serial *l)
{
    dw_sim_server *s = l->srv;
    dw_error err;
    dw_error_clear(&err);
    dw_sim_outcome *o = &l->play.out;
    int rc = dw__sim_decide(&l->play, l->gen, l->sess, l->payload.data, l->payload.len, NULL, &err);
    size_t len = l->payload.len;
    dw_buf_clear(&l->payload);
    if (rc != DW_OK)
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
    dw__sim_report_limits(s, l->play.id, s->addr, o, len);
    if (rc == DW_ENOMEM || o->source == DW_SIM_BY_HUNG)
        return;
    if (o->source == DW_SIM_BY_UNMATCHED)
        dw__sim_log(s, DW_LOG_INFO, "%s: unmatched request (%zu bytes)", s->addr, len);
    dw__sim_play(&l->play);
}

/* ---- the line's input ------------------------------------------------------ */

/* Frame and serve what was read while no reply is under way. A bad frame
 * (too big, malformed) is dropped and logged: a line has no connection to
 * close, so the device reads on from the next byte. */
static void pump(sim_serial *l)
{
    while (l->in_at < l->in.len && l->play.phase == DW_SIM_PLAY_IDLE) {
        if (l->gen != l->srv->gen && line_bind(l) != DW_OK) {
            dw__sim_log(l->srv, DW_LOG_ERROR, "%s: out of memory", l->srv->addr);
            break;
        }
        dw_error err;
        dw_error_clear(&err);
        size_t used = 0;
        int rc = dw_decoder_feed(l->dec, l->in.data + l->in_at, l->in.len - l->in_at, &used,
                                 &l->payload, &err);
        l->in_at += used;
        if (rc == DW_OK) {
            handle_request(l);
        } else if (rc != DW_MORE) {
            dw__sim_log(l->srv, DW_LOG_WARN, "%s: %s; frame dropped", l->srv->addr,
                        dw_error_message(&err));
            record(l, "fault", NULL, 0, dw_err_name(rc), NULL);
            dw_decoder_reset(l->dec);
            dw_buf_clear(&l->payload);
        }
    }
    if (l->in_at == l->in.len) {
        dw_buf_clear(&l->in);
        l->in_at = 0;
    }
    update_poll(l);
}

static void read_line(sim_serial *l)
{
    for (;;) {
        ssize_t n = read(l->master, l->rbuf, sizeof l->rbuf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) { /* cannot happen while our slave descriptor is open */
            dw__sim_log(l->srv, DW_LOG_ERROR, "%s: read: %s; the line stops", l->srv->addr,
                        n < 0 ? strerror(errno) : "end of file");
            l->failed = 1;
            break;
        }
        if (dw_buf_append(&l->in, l->rbuf, (size_t)n) != DW_OK) {
            dw__sim_log(l->srv, DW_LOG_ERROR, "%s: out of memory, input dropped", l->srv->addr);
            break;
        }
        if ((size_t)n < sizeof l->rbuf)
            break;
    }
    pump(l);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sim_serial *l = h->data;
    if (status < 0) {
        dw__sim_log(l->srv, DW_LOG_ERROR, "%s: poll: %s", l->srv->addr, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE)
        flush(l);
    if (events & UV_READABLE)
        read_line(l);
}

/* ---- opening and closing ------------------------------------------------- */

int dw__sim_tty_make_raw(int fd, const char *path, dw_error *err)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return dw_error_set(err, DW_EIO, "tcgetattr %s: %s", path, strerror(errno));
    cfmakeraw(&t);
    if (tcsetattr(fd, TCSANOW, &t) != 0)
        return dw_error_set(err, DW_EIO, "tcsetattr %s: %s", path, strerror(errno));
    return DW_OK;
}

int dw__sim_pty_open(int *master, int *slave, char *path, size_t cap, dw_error *err)
{
    *slave = -1;
    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0)
        return dw_error_set(err, DW_EIO, "posix_openpt: %s", strerror(errno));
    if (grantpt(*master) != 0 || unlockpt(*master) != 0 || ptsname_r(*master, path, cap) != 0)
        return dw_error_set(err, DW_EIO, "pseudo-terminal: %s", strerror(errno));
    *slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0)
        return dw_error_set(err, DW_EIO, "open %s: %s", path, strerror(errno));
    int rc = dw__sim_tty_make_raw(*slave, path, err);
    if (rc != DW_OK)
        return rc;
    int fl = fcntl(*master, F_GETFL);
    if (fl < 0 || fcntl(*master, F_SETFL, fl | O_NONBLOCK) != 0)
        return dw_error_set(err, DW_EIO, "fcntl %s: %s", path, strerror(errno));
    return DW_OK;
}

int dw__sim_link_make(const char *link, const char *target, dw_error *err)
{
    struct stat st;
    if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode))
        return dw_error_set(err, DW_EIO,
                            "link %s: exists and is not a symbolic link; not replacing it", link);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.%ld~", link, (long)getpid()) >= (int)sizeof tmp)
        return dw_error_set(err, DW_EINVAL, "link %s: path too long", link);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return dw_error_set(err, DW_EIO, "link %s: %s", link, strerror(errno));
    if (rename(tmp, link) != 0) {
        int e = errno;
        unlink(tmp);
        return dw_error_set(err, DW_EIO, "link %s: %s", link, strerror(e));
    }
    return DW_OK;
}

void dw__sim_link_remove(const char *link, const char *target)
{
    char now[PATH_MAX];
    ssize_t n = readlink(link, now, sizeof now - 1);
    if (n < 0)
        return;
    now[n] = '\0';
    if (strcmp(now, target) == 0)
        unlink(link);
}

/* Power-on: the banner, if any. */
static int line_start(sim_serial *l)
{
    int rc = line_bind(l);
    dw_buf banner = DW_BUF_INIT;
    if (rc == DW_OK)
        rc = dw_sim_engine_banner(l->gen->engine, l->sess, &banner);
    if (rc == DW_OK && banner.len) {
        record(l, "out", banner.data, banner.len, "banner", NULL);
        send_bytes(l, banner.data, banner.len);
    }
    dw_buf_free(&banner);
    return rc;
}

static void line_free(sim_serial *l)
{
    if (--l->handles)
        return;
    dw_decoder_free(l->dec);
    dw_buf_free(&l->payload);
    dw_buf_free(&l->in);
    dw_buf_free(&l->out);
    dw_buf_free(&l->held);
    dw__sim_player_free(&l->play);
    close(l->master);
    close(l->slave);
    free(l);
}

static void on_closed(uv_handle_t *h)
{
    line_free(h->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    dw_sim_player *p = h->data; /* the timer is the player's */
    line_free(p->owner);
}

static int serial_open(dw_sim_server *s, const dw_sim_server_options *o, dw_error *err)
{
    sim_serial *l = calloc(1, sizeof *l);
    if (!l || (o->link && !(l->link = strdup(o->link)))) {
        free(l);
        return dw_error_set(err, DW_ENOMEM, "out of memory");
    }
    l->srv = s;
    l->master = l->slave = -1;
    uint32_t baud = o->baud ? o->baud : s->gen->script->baud;
    l->bps = baud / 10; /* 10 bits a byte: start, 8 data, stop */
    uv_loop_t *uv = dw_sim_loop_uv(s->loop);
    uv_timer_init(uv, &l->timer);
    uv_timer_init(uv, &l->pace);
    dw__sim_player_init(&l->play, &serial_play, l, s, &l->timer);
    l->timer.data = &l->play;
    l->pace.data = l;
    l->handles = 2;
    s->serial = l;
    int rc = dw__sim_pty_open(&l->master, &l->slave, s->addr, sizeof s->addr, err);
    if (rc == DW_OK && uv_poll_init(uv, &l->poll, l->master) == 0) {
        l->poll.data = l;
        l->handles++;
    } else if (rc == DW_OK) {
        rc = dw_error_set(err, DW_EIO, "poll %s: cannot watch the line", s->addr);
    }
    if (rc == DW_OK && l->link)
        rc = dw__sim_link_make(l->link, s->addr, err);
    if (rc != DW_OK) {
        free(l->link);
        l->link = NULL; /* not made: nothing to remove */
        return rc;      /* serial_close (server_close) frees the rest */
    }
    s->accepted = 1;
    l->id = l->play.id = ++s->next_id;
    record(l, "open", NULL, 0, NULL, s->addr);
    if (line_start(l) != DW_OK)
        return dw_error_set(err, DW_ENOMEM, "%s: out of memory", s->addr);
    update_poll(l);
    return DW_OK;
}

static void serial_close(dw_sim_server *s)
{
    sim_serial *l = s->serial;
    if (!l) /* never opened */
        return;
    s->serial = NULL;
    if (l->link)
        dw__sim_link_remove(l->link, s->addr);
    free(l->link);
    if (l->id)
        record(l, "close", NULL, 0, NULL, s->addr);
    /* Now, not in on_closed: the server may be freed before that runs
     * (a failed open on a shared loop). */
    dw_sim_session_free(l->sess);
    dw__sim_gen_release(s, l->gen);
    l->sess = NULL;
    l->gen = NULL;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
    uv_close((uv_handle_t *)&l->pace, on_closed);
    if (l->handles == 3)
        uv_close((uv_handle_t *)&l->poll, on_closed);
}

static void serial_periodic(dw_sim_server *s, size_t i)
{
    sim_serial *l = s->serial;
    if (l->gen != s->gen && (l->play.phase != DW_SIM_PLAY_IDLE || line_bind(l) != DW_OK))
        return;
    if (dw_sim_session_hung(l->sess))
        return;
    dw_error err;
    dw_error_clear(&err);
    dw_buf_clear(&s->msg);
    if (dw_sim_engine_periodic(l->gen->engine, l->sess, i, &s->msg, &err) != DW_OK) {
        dw__sim_log(s, DW_LOG_ERROR, "%s", dw_error_message(&err));
        return;
    }
    record(l, "periodic", s->msg.data, s->msg.len, NULL, NULL);
    if (l->play.phase == DW_SIM_PLAY_PIECES) { /* never between a reply's pieces */
        if (dw_buf_append(&l->held, s->msg.data, s->msg.len) != DW_OK)
            dw__sim_log(s, DW_LOG_ERROR, "%s: out of memory, message dropped", s->addr);
        return;
    }
    send_bytes(l, s->msg.data, s->msg.len);
}

int dw_sim_server_serial(const dw_sim_server *s)
{
    return s->serial != NULL;
}

const dw_sim_transport_ops dw__sim_serial_transport = {
    serial_open, serial_close, serial_periodic, NULL, NULL, NULL, NULL};
