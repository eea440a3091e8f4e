/* Arm semihosting (the debugger's or QEMU's console and exit), the only
 * I/O of the firmware: no libc stdio, so nothing that allocates. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

/* writes the NUL-terminated s to the host's console */
void sh_puts(const char *s);
/* ends the program (QEMU exits with status code) */
void sh_exit(int code) __attribute__((noreturn));

#endif
