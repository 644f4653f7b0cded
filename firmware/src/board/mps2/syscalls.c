/*
 * The system calls newlib-nano links against. Only _sbrk does real work (the heap that printf's
 * float conversion allocates from, a fixed reservation of the linker script); the rest exist
 * because libc's stdio and abort() refer to them: _write goes to UART0, _exit halts, the others
 * fail.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "board.h"

extern uint8_t __heap_start, __heap_end;

void *_sbrk(ptrdiff_t increment) {
    static uint8_t *s_brk = &__heap_start;
    uint8_t *previous = s_brk;

    if (increment > &__heap_end - s_brk || increment < &__heap_start - s_brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    s_brk += increment;
    return previous;
}

int _write(int fd, const char *buf, int len) {
    (void)fd;
    board_write(buf, (size_t)len);
    return len;
}

void _exit(int status) {
    (void)status;
    board_halt();
}

int _kill(int pid, int sig) {
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void) { return 1; }

int _close(int fd) {
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st) {
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd) {
    (void)fd;
    return 1;
}

int _lseek(int fd, int offset, int whence) {
    (void)fd;
    (void)offset;
    (void)whence;
    errno = ESPIPE;
    return -1;
}

int _read(int fd, char *buf, int len) {
    (void)fd;
    (void)buf;
    (void)len;
    errno = EBADF;
    return -1;
}
