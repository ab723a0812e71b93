/*
 * paths.h - where mdscale keeps its files, shared by the daemon and the CLI.
 */
#ifndef MDS_PATHS_H
#define MDS_PATHS_H

/*
 * Returns the default data directory, newly allocated: $MDSCALE_DATA if set,
 * else $XDG_DATA_HOME/mdscale, else $HOME/.local/share/mdscale, else
 * /var/lib/mdscale. The caller frees it.
 */
char *paths_default_data_dir(void);

/* Returns "<dir>/token", newly allocated. */
char *paths_token_file(const char *data_dir);

/* Returns "<dir>/api.sock", the API's Unix socket, newly allocated. */
char *paths_api_socket(const char *data_dir);

#endif
