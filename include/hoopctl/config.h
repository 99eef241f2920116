/* config.h — where hoopctl keeps its files (XDG, HOOPCTL_* overrides) and the
 * JSON config file (read with jansson). */
#ifndef HOOPCTL_CONFIG_H
#define HOOPCTL_CONFIG_H

#include <stddef.h>
#include <jansson.h>

/* $HOOPCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/hoopctl, else ~/.config/hoopctl.
 * Returns 0, or -1 when the path does not fit or HOME is unset. */
int config_dir(char *out, size_t len);
/* $HOOPCTL_STATE_DIR, else $XDG_STATE_HOME/hoopctl, else ~/.local/state/hoopctl. */
int config_state_dir(char *out, size_t len);
/* $HOOPCTL_CONFIG, else <config_dir>/config.json. */
int config_file_path(char *out, size_t len);

/* mkdir -p with the given mode for each created component. */
int config_mkdirs(const char *path, unsigned mode);

/* jansson's error text without the text it stopped at (its "near '...'",
 * which in a config or token file, a request body or an identity provider's
 * answer may be a piece of a password or a token); cut in place. The line
 * and column say where. */
const char *config_json_error(json_error_t *e);

/* Load a JSON object from path. A missing file gives an empty object
 * (missing_ok) or an error. Errors name the file, line and column. */
json_t *config_load(const char *path, int missing_ok, char *err, size_t errlen);

/* Load the client's config file (config_file_path) and check it. A missing
 * default file is an empty object; a file HOOPCTL_CONFIG names, or a
 * symbolic link, that leads nowhere is an error. So is a known key of the
 * wrong type ("server" not an object; server.url, server.ca_file or
 * server.token_file not a string): err names the file and the key. An
 * unknown key is logged as a warning (once per process), with the known key
 * it was probably meant as. NULL with err on error. */
json_t *config_load_client(char *err, size_t errlen);

/* A key a configuration file may hold: "key" or "section.key", and what it
 * holds: 's' a string, 'i' a whole number, 'o' an object (not looked into). */
struct config_key {
    const char *name;
    char type;
};

/* Check cfg (read from path) against keys, a list ended by {NULL, 0}: a
 * known key of another type, or a section that is not an object, is -1 with
 * err naming path and key. An unknown key is an error too when strict; else
 * it is logged as a warning (when warn), with the known key it was probably
 * meant as. */
int config_check_keys(json_t *cfg, const struct config_key *keys, const char *path, int strict, int warn,
                      char *err, size_t errlen);

/* Write data to path atomically (temp file in the same directory, fsync,
 * rename) with the given mode. Returns 0 or -1 with errno set. */
int config_write_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* Look up a dotted key ("server.url") as a string; NULL when absent or not a
 * string. An environment variable HOOPCTL_<KEY> (dots to underscores,
 * upper case) wins over the file. */
const char *config_get_string(json_t *cfg, const char *key);

#endif
