/* cli.h — the command table: one entry per command, and the option parser
 * that every command, `hoopctl help`, the man-page check and the shell
 * completions read. Only cmd/ and src/cli/ print to the terminal. */
#ifndef HOOPCTL_CLI_H
#define HOOPCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_MAX_OPTIONS 32
#define CLI_MAX_POSITIONALS 64

/* What completion an argument takes (used by the completion generators). */
enum cli_complete {
    CLI_COMPLETE_NONE = 0,  /* free text */
    CLI_COMPLETE_FILE,      /* a path */
    CLI_COMPLETE_DIR,       /* a directory */
    CLI_COMPLETE_WORDS,     /* one of cli_option.words, space separated */
    CLI_COMPLETE_COMMAND,   /* a hoopctl command name */
    CLI_COMPLETE_DYNAMIC,   /* asked of `hoopctl __complete <kind>` at run time */
    CLI_COMPLETE_DYNAMIC_FILE, /* the same, and paths besides */
};

/* How the argument after a verb completes ("reviews approve <ID>"): the
 * verbs (space separated) and their argument's kind. A command's list ends
 * with a zeroed entry. */
struct cli_verb_complete {
    const char *verbs;
    enum cli_complete complete;
    const char *words;
};

struct cli_option {
    const char *name;       /* long name, without "--" */
    char short_name;        /* 0 when none */
    const char *arg;        /* argument placeholder, NULL for a flag */
    const char *help;       /* one line */
    enum cli_complete complete;
    const char *words;      /* for CLI_COMPLETE_WORDS / _DYNAMIC: words or kind */
};

struct cli_args;
struct cli_context;

struct cli_command {
    const char *name;
    const char *summary;    /* one line, no trailing period */
    const char *usage;      /* after "hoopctl <name> " */
    const char *description;/* a paragraph for `help <cmd>`, may be NULL */
    const struct cli_option *options; /* terminated by a zeroed entry, may be NULL */
    /* completion of positional arguments */
    enum cli_complete arg_complete;
    const char *arg_words;
    bool hidden;            /* left out of help, man check and completions */
    const struct cli_verb_complete *verb_complete; /* may be NULL */
    int min_args, max_args; /* positional count; max_args < 0: unbounded */
    bool runs_command;      /* takes "-- command args...": an argument too many is that command, misplaced */
    int (*run)(const struct cli_args *args, struct cli_context *ctx);
};

/* Global state built by main() and passed down; no globals elsewhere. */
struct cli_context {
    const char *argv0;
    bool debug;
    bool color;             /* false under NO_COLOR or when stdout is not a tty */
    const char *output;     /* "table" (default) or "json" */
};

/* Parsed arguments of one command invocation. */
#define CLI_MAX_GLOBALS 8
struct cli_args {
    const struct cli_command *cmd;
    const char *values[CLI_MAX_OPTIONS]; /* by option index; "" for a set flag */
    int counts[CLI_MAX_OPTIONS];
    int npos;
    char **pos;             /* positional arguments (not copied) */
    int nrest;              /* arguments after "--" */
    char **rest;
    /* Global options given after the command, by cli_global_options index
     * ("" for a set flag): the command's own options come first. */
    const char *globals[CLI_MAX_GLOBALS];
};

/* The global options, accepted before the command and after it: --output/-o,
 * --debug, --log-level, --help/-h, --version (terminated by a NULL name). */
enum { CLI_GLOBAL_OUTPUT, CLI_GLOBAL_DEBUG, CLI_GLOBAL_LOG_LEVEL, CLI_GLOBAL_HELP, CLI_GLOBAL_VERSION };
extern const struct cli_option cli_global_options[];

/* One global option at argv[*i] (its value too, moving *i past it) into
 * values[]: 1 taken, 0 not a global option, -1 with err (a missing value). */
int cli_parse_global(int argc, char **argv, int *i, const char **values, char *err, size_t errlen);

/* Exit codes that mean something. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,   /* the operation failed */
    CLI_EXIT_USAGE = 2,     /* bad command line */
    CLI_EXIT_AUTH = 3,      /* not logged in / token refused */
    CLI_EXIT_DENIED = 4,    /* forbidden by policy or groups */
    CLI_EXIT_UNAVAILABLE = 5, /* server or upstream unreachable */
};

/* The table (src/cli/commands.c), NULL-terminated. */
extern const struct cli_command *const cli_commands[];

const struct cli_command *cli_find(const char *name);
/* Nearest visible command (util_nearest_name: a prefix first, then edit distance). */
const struct cli_command *cli_suggest(const char *name);
/* Whether the suggestion is close enough to be a typo of name. */
bool cli_suggestion_is_close(const char *name, const struct cli_command *cmd);
/* Print "'x' is not a hoopctl command; did you mean ...?" to stderr. */
int cli_unknown_command(const char *name);

/* Parse argv (argv[0] is the command name). On error returns -1 and writes a
 * one-line message to err. */
int cli_parse(const struct cli_command *cmd, int argc, char **argv,
              struct cli_args *out, char *err, size_t errlen);
/* Value of a long option, or NULL when absent. */
const char *cli_get(const struct cli_args *args, const char *name);
bool cli_flag(const struct cli_args *args, const char *name);
/* --max-sessions of gateway and connect (src/cli/gateway.c): *out is its
 * value, or 0 (the gateway's default) without it. 0, or -1 when it is not
 * a number from 1 to CLI_MAX_SESSIONS. */
#define CLI_MAX_SESSIONS 1000000
int cli_get_max_sessions(const struct cli_args *args, size_t *out);

/* Printing helpers for help and usage. */
void cli_print_usage_line(const struct cli_command *cmd, void *stream);
void cli_print_command_help(const struct cli_command *cmd, void *stream);
void cli_print_overview(void *stream);
int cli_usage_error(const struct cli_command *cmd, const char *msg);
/* Print "hoopctl <name>: msg" to stderr and return code (src/cli/cli.c). */
int cli_fail(const char *name, int code, const char *msg);
/* A verb's arguments: a->npos must be want (the verb included); what says
 * what they are ("a session id"). 0, or the usage error's exit code. */
int cli_verb_args(const struct cli_args *a, int want, const char *what);
/* whoami and token show the saved login: say on stderr when HOOPCTL_TOKEN,
 * which every other command would use instead, is set. */
void cli_note_env_token(const char *name);
/* Remove every PG* variable from this process's environment, for commands
 * whose libpq connections (the catalog's, MCP's to its own gateway) take
 * everything from the server and must not follow the user's PGSERVICE,
 * PGHOSTADDR, PGSSLMODE, ... Call before any thread starts. */
void cli_drop_pg_env(void);
/* --limit, when given, is a number from 1 to max: 0 or a usage error. */
int cli_check_limit(const struct cli_args *a, long max);

/* s escaped for a terminal on one line (buf_append_terminal_safe with
 * keep_lines false: a newline or a tab is \x0a, \x09), for each field of a
 * line that others wrote; NULL for NULL, "?" when out of memory. The string
 * lives until the process exits. */
const char *cli_safe(const char *s);

/* A statement's text for a terminal: its first line where it stands, each
 * further line after cont ("\n" and a prefix no statement line can begin
 * with: blanks and a bar), every line escaped on its own (a tab is \x09), so
 * a statement cannot pass a line of its own off as the output around it. */
struct buf;
int cli_put_statement(struct buf *b, const char *text, const char *cont);

/* The --server option of the commands that call the server API. */
#define CLI_OPTION_SERVER \
    {"server", 0, "URL", "server URL (default: server.url, else the last login)", CLI_COMPLETE_NONE, NULL}

/* Completion script generators (src/cli/completion.c). */
int cli_completion_print(const char *shell, void *stream);

/* Dynamic completion values (src/cli/complete.c, `hoopctl __complete KIND`). */
struct json_t;
struct buf;
/* Whether w may be offered to a shell: 1..128 bytes of letters, digits and
 * "._:@-" (shells expand completion words, so nothing else gets through). */
bool cli_complete_word_ok(const char *w);
/* Append the words of a server answer for kind ("connections", "sessions",
 * "reviews") to out, one per line, skipping words that are not ok. Returns
 * the number of words, or -1 for an unknown kind or an answer of the wrong
 * shape. */
int cli_complete_words_from(const char *kind, const struct json_t *resp, struct buf *out);

#endif
