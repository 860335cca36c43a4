/* rig-rpc: one JSON-RPC request line to a Unix socket, prints the one answer line.
 *   rig-rpc UID SOCKET 'JSON'
 * Switches to UID (and gid UID, no supplementary groups) before connect(), so a server that
 * identifies peers by SO_PEERCRED sees that uid. Exit 0 when a full line came back. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: rig-rpc UID SOCKET JSON\n"); return 2; }
    uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
    if (uid != getuid()) {
        if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0) { perror("rig-rpc: setuid"); return 1; }
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) { perror("rig-rpc: socket"); return 1; }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("rig-rpc: connect"); return 1; }
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = strlen(argv[3]);
    char *req = malloc(n + 2);
    memcpy(req, argv[3], n); req[n] = '\n';
    for (size_t off = 0; off < n + 1;) {
        ssize_t w = write(fd, req + off, n + 1 - off);
        if (w <= 0) { perror("rig-rpc: write"); return 1; }
        off += (size_t)w;
    }
    char c;
    for (;;) {
        ssize_t r = read(fd, &c, 1);
        if (r <= 0) { fprintf(stderr, "rig-rpc: connection closed before a full answer\n"); return 1; }
        putchar(c);
        if (c == '\n') break;
    }
    close(fd);
    return 0;
}
