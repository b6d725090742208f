#define _GNU_SOURCE
#include <time.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <stdio.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdatomic.h>
/* Diagnostic LD_PRELOAD shim for a Venus (or native) Vulkan client; not part of the product.
 * Build: gcc -O2 -shared -fPIC -o client-shim.so scripts/diag/client-shim.c -ldl
 * - TL_OUT=PREFIX: record clock_nanosleep, xcb_put_image, sendmsg, write and sched_yield calls
 *   (CLOCK_REALTIME start/end, thread id, kind, argument) and write them to PREFIX.<pid> at
 *   exit, one "t0 t1 tid kind arg" line each (kind 1 sleep [arg: requested us], 2 put_image
 *   [bytes], 3 sendmsg, 4 write [fd*1e8+bytes], 5 sched_yield). The server's
 *   VENUS_LOG=venus_renderer::exec=trace lines carry comparable UTC timestamps.
 * - TL_SLEEP_CAP_NS=N: shorten every relative clock_nanosleep below 1 s to at most N ns (the
 *   "client sleeps capped" experiment of docs/benchmarks.md, vkcube). */
struct ev { double t0, t1; int tid; int kind; long arg; };
#define MAXEV 2000000
static struct ev *evs; static atomic_long nev;
static double now(void) { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
static void rec(double t0, double t1, int kind, long arg) {
  if (!evs) return;
  long i = atomic_fetch_add(&nev, 1); if (i >= MAXEV) return;
  evs[i] = (struct ev){t0, t1, (int)syscall(SYS_gettid), kind, arg};
}
static void dump(void) {
  const char *o = getenv("TL_OUT"); if (!o || !evs) return;
  char p[512]; snprintf(p, sizeof p, "%s.%d", o, getpid());
  FILE *f = fopen(p, "w"); if (!f) return;
  long n = nev < MAXEV ? nev : MAXEV;
  for (long i = 0; i < n; i++) fprintf(f, "%.7f %.7f %d %d %ld\n", evs[i].t0, evs[i].t1, evs[i].tid, evs[i].kind, evs[i].arg);
  fclose(f);
}
__attribute__((constructor)) static void init(void) { if (getenv("TL_OUT")) { evs = calloc(MAXEV, sizeof *evs); atexit(dump); } }
int clock_nanosleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem) {
  static int (*real)(clockid_t, int, const struct timespec *, struct timespec *);
  if (!real) real = dlsym(RTLD_NEXT, "clock_nanosleep");
  static long cap = -1;
  if (cap < 0) { const char *e = getenv("TL_SLEEP_CAP_NS"); cap = e ? atol(e) : 0; }
  struct timespec capped;
  if (cap > 0 && flags == 0 && req->tv_sec == 0 && req->tv_nsec > cap) {
    capped = (struct timespec){0, cap};
    req = &capped;
  }
  double t0 = now(); int r = real(c, flags, req, rem); rec(t0, now(), 1, req->tv_nsec / 1000); return r;
}
typedef struct { unsigned int sequence; } xcb_void_cookie_t;
xcb_void_cookie_t xcb_put_image(void *c, uint8_t format, uint32_t drawable, uint32_t gc, uint16_t width, uint16_t height, int16_t dst_x, int16_t dst_y, uint8_t left_pad, uint8_t depth, uint32_t data_len, const uint8_t *data) {
  static xcb_void_cookie_t (*real)(void *, uint8_t, uint32_t, uint32_t, uint16_t, uint16_t, int16_t, int16_t, uint8_t, uint8_t, uint32_t, const uint8_t *);
  if (!real) real = dlsym(RTLD_NEXT, "xcb_put_image");
  double t0 = now(); xcb_void_cookie_t r = real(c, format, drawable, gc, width, height, dst_x, dst_y, left_pad, depth, data_len, data); rec(t0, now(), 2, data_len); return r;
}
ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
  static ssize_t (*real)(int, const struct msghdr *, int);
  if (!real) real = dlsym(RTLD_NEXT, "sendmsg");
  double t0 = now(); ssize_t r = real(fd, m, flags); rec(t0, now(), 3, r); return r;
}
ssize_t write(int fd, const void *b, size_t n) {
  static ssize_t (*real)(int, const void *, size_t);
  if (!real) real = dlsym(RTLD_NEXT, "write");
  double t0 = now(); ssize_t r = real(fd, b, n); rec(t0, now(), 4, (long)fd * 100000000L + (r > 0 ? r : 0)); return r;
}
int sched_yield(void) {
  static int (*real)(void);
  if (!real) real = dlsym(RTLD_NEXT, "sched_yield");
  double t0 = now(); int r = real(); rec(t0, now(), 5, 0); return r;
}
