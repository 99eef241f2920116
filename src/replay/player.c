/* player.c — plays a replay script with its timing: keys pause it, change the
 * speed and jump between statements; and writes the same script as an
 * asciinema v2 recording. */
#include "hoopctl/replay.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

void replay_player_init(struct replay_player *p, const struct replay_script *sc, double speed)
{
    memset(p, 0, sizeof *p);
    p->script = sc;
    p->speed = speed < REPLAY_SPEED_MIN ? REPLAY_SPEED_MIN
               : speed > REPLAY_SPEED_MAX ? REPLAY_SPEED_MAX
                                          : speed;
}

/* The statement on screen now: the one of the last frame shown. */
static int current_statement(const struct replay_player *p)
{
    const struct replay_script *sc = p->script;
    if (sc->nframes == 0)
        return 0;
    int shown = p->next_frame > 0 ? p->next_frame - 1 : 0;
    return sc->frames[shown].statement;
}

enum replay_key_action replay_player_key(struct replay_player *p, int key)
{
    const struct replay_script *sc = p->script;
    switch (key) {
    case 'q':
    case 'Q':
    case 3: /* ^C: the terminal is in raw mode */
        return REPLAY_KEY_QUIT;
    case ' ':
        p->paused = !p->paused;
        return REPLAY_KEY_PAUSE_TOGGLED;
    case '+':
    case '=':
        p->speed = p->speed * 2 > REPLAY_SPEED_MAX ? REPLAY_SPEED_MAX : p->speed * 2;
        return REPLAY_KEY_SPEED_CHANGED;
    case '-':
    case '_':
        p->speed = p->speed / 2 < REPLAY_SPEED_MIN ? REPLAY_SPEED_MIN : p->speed / 2;
        return REPLAY_KEY_SPEED_CHANGED;
    case 'n': {
        if (sc->nframes == 0)
            return REPLAY_KEY_NONE;
        int cur = current_statement(p);
        /* a statement not typed yet is the next one */
        int target = p->next_frame <= sc->first_frame[cur] ? cur : cur + 1;
        if (target >= sc->nstatements) {
            p->next_frame = sc->nframes; /* show the rest */
            return REPLAY_KEY_JUMP;
        }
        /* through the next statement's echo; its output then plays in time */
        p->next_frame = sc->first_frame[target] + 1;
        return REPLAY_KEY_JUMP;
    }
    case 'p': {
        if (sc->nframes == 0)
            return REPLAY_KEY_NONE;
        int first = sc->frames[0].statement;
        int cur = current_statement(p);
        /* within a statement's output, 'p' first restarts that statement */
        int target = p->next_frame > sc->first_frame[cur] + 1 ? cur : cur - 1;
        if (target < first)
            target = first;
        p->next_frame = sc->first_frame[target] + 1;
        return REPLAY_KEY_REWIND;
    }
    default:
        return REPLAY_KEY_NONE;
    }
}

int64_t replay_player_delay(const struct replay_player *p, int frame)
{
    const struct replay_script *sc = p->script;
    if (frame <= 0 || frame >= sc->nframes)
        return 0;
    int64_t gap = sc->frames[frame].at_ms - sc->frames[frame - 1].at_ms;
    return gap <= 0 ? 0 : (int64_t)((double)gap / p->speed);
}

static int write_frame(FILE *out, const struct replay_frame *f)
{
    size_t n = strlen(f->text);
    if (fwrite(f->text, 1, n, out) != n || fflush(out) != 0)
        return -1;
    return 0;
}

/* Wait up to ms for a key on fd (ms < 0: until a key). 0 on timeout. */
static int wait_key(int fd, int64_t ms, int *key)
{
    if (fd < 0) {
        if (ms > 0)
            poll(NULL, 0, ms > 60000 ? 60000 : (int)ms);
        return 0;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, ms < 0 ? -1 : ms > 60000 ? 60000 : (int)ms);
    if (rc <= 0)
        return 0;
    unsigned char c;
    ssize_t n = read(fd, &c, 1);
    if (n != 1) {
        *key = 'q'; /* the terminal went away */
        return 1;
    }
    *key = c;
    return 1;
}

int replay_play(const struct replay_script *sc, double speed, FILE *out, int key_fd)
{
    struct replay_player p;
    replay_player_init(&p, sc, speed);
    int shown = 0; /* frames on screen now */
    while (shown < sc->nframes) {
        if (shown < p.next_frame) { /* catching up after n/p: no waiting */
            if (write_frame(out, &sc->frames[shown]) < 0)
                return -1;
            shown++;
            continue;
        }
        int64_t delay = replay_player_delay(&p, shown);
        int64_t deadline = util_monotonic_us() / 1000 + delay;
        int key = 0, show_now = 0;
        for (;;) {
            int64_t left = p.paused ? -1 : deadline - util_monotonic_us() / 1000;
            if (!p.paused && left <= 0) {
                show_now = 1;
                break;
            }
            if (!wait_key(key_fd, left, &key))
                continue;
            enum replay_key_action a = replay_player_key(&p, key);
            if (a == REPLAY_KEY_QUIT)
                return 0;
            if (a == REPLAY_KEY_SPEED_CHANGED || a == REPLAY_KEY_PAUSE_TOGGLED)
                deadline = util_monotonic_us() / 1000 + replay_player_delay(&p, shown);
            if (a == REPLAY_KEY_REWIND) {
                if (fputs("\033[H\033[2J", out) == EOF)
                    return -1;
                shown = 0;
                break;
            }
            if (a == REPLAY_KEY_JUMP)
                break;
        }
        if (show_now) {
            if (write_frame(out, &sc->frames[shown]) < 0)
                return -1;
            shown++;
            p.next_frame = shown;
        }
    }
    return 0;
}

int replay_play_terminal(const struct replay_script *sc, double speed, FILE *out, int in_fd)
{
    struct termios saved, raw;
    if (in_fd < 0 || !isatty(in_fd) || tcgetattr(in_fd, &saved) != 0)
        return replay_play(sc, speed, out, -1);
    raw = saved;
    /* byte by byte, no echo; ^C arrives as a key (quit) so the terminal is
     * always restored */
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO | ISIG);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(in_fd, TCSANOW, &raw) != 0)
        return replay_play(sc, speed, out, -1);
    int rc = replay_play(sc, speed, out, in_fd);
    tcsetattr(in_fd, TCSANOW, &saved);
    return rc;
}

int replay_write_asciicast(const struct replay_script *sc, const struct replay_session *s,
                           double speed, int width, int height, FILE *out)
{
    struct asciicast a;
    char title[512];
    snprintf(title, sizeof title, "hoopctl replay %s (%s on %s)", s->id, s->user[0] ? s->user : "?",
             s->connection[0] ? s->connection : "?");
    if (speed <= 0)
        speed = 1;
    if (asciicast_begin(&a, out, width, height, s->started_ms / 1000, title) < 0)
        return -1;
    for (int i = 0; i < sc->nframes; i++) {
        const struct replay_frame *f = &sc->frames[i];
        if (asciicast_output(&a, (double)f->at_ms / 1000.0 / speed, f->text, strlen(f->text)) < 0)
            return -1;
    }
    return fflush(out) == 0 ? 0 : -1;
}
