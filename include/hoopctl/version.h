/* version.h — the one place the version lives. */
#ifndef HOOPCTL_VERSION_H
#define HOOPCTL_VERSION_H
#define HOOPCTL_VERSION "0.1.0"
#endif
