/* ABI check of libvirglrenderer.so.1 (venus-rs): compiled against include/virglrenderer.h,
 * linked with the cdylib. Prints the struct layout facts (compared with the Rust side by
 * tests/c_abi.rs), then runs init -> capset -> context -> blob -> map -> export -> submit (a
 * vkEnumerateInstanceVersion with a reply stream) -> fences -> 2D resource -> reset ->
 * cleanup, checking every observable result. Usage: abi_test EXPECTED_API_VERSION|any */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "virglrenderer.h"

struct virgl_box {
   uint32_t x, y, z, w, h, d;
};

#define CHECK(cond, ...)                                                                     \
   do {                                                                                      \
      if (!(cond)) {                                                                         \
         fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
         fprintf(stderr, __VA_ARGS__);                                                       \
         fprintf(stderr, "\n");                                                              \
         exit(1);                                                                            \
      }                                                                                      \
   } while (0)

#define FACT(name, value) printf("layout %s %zu\n", name, (size_t)(value))

static void print_layout(void)
{
   FACT("sizeof(callbacks)", sizeof(struct virgl_renderer_callbacks));
   FACT("callbacks.write_fence", offsetof(struct virgl_renderer_callbacks, write_fence));
   FACT("callbacks.get_drm_fd", offsetof(struct virgl_renderer_callbacks, get_drm_fd));
   FACT("callbacks.write_context_fence",
        offsetof(struct virgl_renderer_callbacks, write_context_fence));
   FACT("callbacks.get_server_fd", offsetof(struct virgl_renderer_callbacks, get_server_fd));
   FACT("callbacks.get_egl_display", offsetof(struct virgl_renderer_callbacks, get_egl_display));
   FACT("sizeof(create_blob_args)", sizeof(struct virgl_renderer_resource_create_blob_args));
   FACT("create_blob_args.blob_id",
        offsetof(struct virgl_renderer_resource_create_blob_args, blob_id));
   FACT("create_blob_args.size", offsetof(struct virgl_renderer_resource_create_blob_args, size));
   FACT("create_blob_args.iovecs",
        offsetof(struct virgl_renderer_resource_create_blob_args, iovecs));
   FACT("create_blob_args.num_iovs",
        offsetof(struct virgl_renderer_resource_create_blob_args, num_iovs));
   FACT("sizeof(resource_create_args)", sizeof(struct virgl_renderer_resource_create_args));
   FACT("sizeof(resource_info)", sizeof(struct virgl_renderer_resource_info));
   FACT("sizeof(resource_info_ext)", sizeof(struct virgl_renderer_resource_info_ext));
   FACT("resource_info_ext.base", offsetof(struct virgl_renderer_resource_info_ext, base));
   FACT("resource_info_ext.has_dmabuf_export",
        offsetof(struct virgl_renderer_resource_info_ext, has_dmabuf_export));
   FACT("resource_info_ext.planes", offsetof(struct virgl_renderer_resource_info_ext, planes));
   FACT("resource_info_ext.modifiers",
        offsetof(struct virgl_renderer_resource_info_ext, modifiers));
   FACT("resource_info_ext.d3d_tex2d",
        offsetof(struct virgl_renderer_resource_info_ext, d3d_tex2d));
   FACT("sizeof(virgl_box)", sizeof(struct virgl_box));
}

/* --- fence callbacks ---------------------------------------------------------------- */
static int cookie_value;
static uint32_t fences[16];
static int nfences;
static struct { uint32_t ctx, ring; uint64_t id; } ctx_fences[16];
static int nctx_fences;

static void write_fence(void *cookie, uint32_t fence)
{
   CHECK(cookie == &cookie_value, "cookie %p", cookie);
   fences[nfences++ % 16] = fence;
}

static void write_context_fence(void *cookie, uint32_t ctx_id, uint32_t ring_idx, uint64_t id)
{
   CHECK(cookie == &cookie_value, "cookie %p", cookie);
   int i = nctx_fences++ % 16;
   ctx_fences[i].ctx = ctx_id;
   ctx_fences[i].ring = ring_idx;
   ctx_fences[i].id = id;
}

static int count_threads(void)
{
   int n = 0;
   DIR *d = opendir("/proc/self/task");
   struct dirent *e;
   while (d && (e = readdir(d)))
      n += e->d_name[0] != '.';
   if (d)
      closedir(d);
   return n;
}

/* --- a minimal Venus stream (wire format: little-endian, no padding) ---------------- */
static size_t put32(uint8_t *b, size_t at, uint32_t v) { memcpy(b + at, &v, 4); return at + 4; }
static size_t put64(uint8_t *b, size_t at, uint64_t v) { memcpy(b + at, &v, 8); return at + 8; }

/* vkSetReplyCommandStreamMESA(res, 0, size) + vkEnumerateInstanceVersion (reply wanted). */
static size_t eiv_stream(uint8_t *b, uint32_t res, uint64_t size)
{
   size_t n = 0;
   n = put32(b, n, 178); /* VK_COMMAND_TYPE_vkSetReplyCommandStreamMESA_EXT */
   n = put32(b, n, 0);
   n = put64(b, n, 1);   /* pStream != NULL */
   n = put32(b, n, res);
   n = put64(b, n, 0);   /* offset */
   n = put64(b, n, size);
   n = put32(b, n, 137); /* VK_COMMAND_TYPE_vkEnumerateInstanceVersion_EXT */
   n = put32(b, n, 1);   /* VK_COMMAND_GENERATE_REPLY_BIT_EXT */
   n = put64(b, n, 1);   /* pApiVersion != NULL */
   return n;
}

static void check_venus(uint32_t expected_version)
{
   uint32_t max_ver = 99, max_size = 99;
   virgl_renderer_get_cap_set(VIRGL_RENDERER_CAPSET_VENUS, &max_ver, &max_size);
   CHECK(max_ver == 0 && max_size == 160, "venus capset %u %u", max_ver, max_size);
   virgl_renderer_get_cap_set(2, &max_ver, &max_size);
   CHECK(max_ver == 0 && max_size == 0, "virgl2 capset %u %u", max_ver, max_size);
   uint32_t caps[40] = {0};
   virgl_renderer_fill_caps(VIRGL_RENDERER_CAPSET_VENUS, 0, caps);
   CHECK(caps[0] == 1 && caps[1] == 0x00404157 && caps[5] == 0x2001c001, "caps %x %x %x",
         caps[0], caps[1], caps[5]);

   CHECK(virgl_renderer_context_create_with_flags(1, 1, 4, "virgl") == -EINVAL, "virgl ctx");
   CHECK(virgl_renderer_context_create_with_flags(1, VIRGL_RENDERER_CAPSET_VENUS, 8, "abi-test") == 0,
         "venus ctx");

   struct virgl_renderer_resource_create_blob_args blob = {
      .res_handle = 1, .ctx_id = 1, .blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D,
      .blob_flags = VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE, .blob_id = 0, .size = 4096,
   };
   CHECK(virgl_renderer_resource_create_blob(&blob) == 0, "create_blob");
   CHECK(virgl_renderer_resource_create_blob(&blob) < 0, "duplicate res_id accepted");
   void *map = NULL;
   uint64_t size = 0;
   CHECK(virgl_renderer_resource_map(1, &map, &size) == 0 && map && size == 4096, "map %lu",
         (unsigned long)size);
   CHECK(virgl_renderer_resource_map(99, &map, &size) < 0, "map of unknown resource");
   struct virgl_renderer_resource_info rinfo;
   CHECK(virgl_renderer_resource_get_info(1, &rinfo) == 0 && rinfo.handle == 1 && rinfo.fd == -1 &&
         rinfo.width == 0, "blob info (QEMU asks after create_blob)");
   uint32_t info = 0;
   CHECK(virgl_renderer_resource_get_map_info(1, &info) == 0 && info == VIRGL_RENDERER_MAP_CACHE_CACHED,
         "map info %u", info);

   uint32_t fd_type = 0;
   int fd = -1;
   CHECK(virgl_renderer_resource_export_blob(1, &fd_type, &fd) == 0 &&
         fd_type == VIRGL_RENDERER_BLOB_FD_TYPE_SHM && fd >= 0, "export %u %d", fd_type, fd);
   uint8_t *other = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
   CHECK(other != MAP_FAILED, "mmap of the exported fd");
   memset(map, 0xab, 4096);
   CHECK(other[4095] == 0xab, "exported fd and map are not the same memory");
   uint8_t *window = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   CHECK(window != MAP_FAILED, "window");
   CHECK(virgl_renderer_resource_map_fixed(1, window + 4096) == 0, "map_fixed");
   CHECK(virgl_renderer_resource_map_fixed(1, window + 1) < 0, "unaligned map_fixed");
   ((uint8_t *)map)[17] = 0x5c;
   CHECK(window[4096 + 17] == 0x5c && window[4096 + 4095] == 0xab, "fixed mapping differs");
   munmap(window, 3 * 4096);

   uint8_t stream[64];
   size_t n = eiv_stream(stream, 1, 4096);
   CHECK(virgl_renderer_submit_cmd(stream, 1, (int)(n / 4)) == 0, "submit_cmd");
   /* reply: command type, VkResult, pApiVersion marker (u64), *pApiVersion */
   uint32_t reply[5];
   memcpy(reply, other, sizeof(reply));
   printf("reply %u %d %u 0x%08x\n", reply[0], (int)reply[1], reply[2], reply[4]);
   CHECK(reply[0] == 137 && reply[1] == 0 && reply[2] == 1 && reply[3] == 0,
         "reply header %u %d %u", reply[0], (int)reply[1], reply[2]);
   CHECK(expected_version == 0 ? (reply[4] >> 22) == 1 : reply[4] == expected_version,
         "api version 0x%x (expected 0x%x)", reply[4], expected_version);

   CHECK(virgl_renderer_context_create_fence(1, 0, 0, 42) == 0, "context fence");
   CHECK(virgl_renderer_create_fence(7, 0) == 0, "ctx0 fence");
   struct pollfd pfd = {.fd = virgl_renderer_get_poll_fd(), .events = POLLIN};
   CHECK(pfd.fd >= 0 && poll(&pfd, 1, 1000) == 1, "poll fd not readable");
   CHECK(nfences == 0 && nctx_fences == 0, "fence reported before poll");
   virgl_renderer_context_poll(1);
   CHECK(nctx_fences == 1 && ctx_fences[0].ctx == 1 && ctx_fences[0].ring == 0 &&
         ctx_fences[0].id == 42 && nfences == 0, "context_poll: %d ctx fences", nctx_fences);
   virgl_renderer_poll();
   CHECK(nfences == 1 && fences[0] == 7 && nctx_fences == 1, "poll: %d fences", nfences);
   CHECK(poll(&pfd, 1, 0) == 0, "poll fd still readable");
   printf("fences ctx=%u ring=%u id=%lu global=%u\n", ctx_fences[0].ctx, ctx_fences[0].ring,
          (unsigned long)ctx_fences[0].id, fences[0]);

   munmap(other, 4096);
   close(fd);
   CHECK(virgl_renderer_resource_unmap(1) == 0, "unmap");
   virgl_renderer_resource_unref(1);
   CHECK(virgl_renderer_resource_map(1, &map, &size) < 0, "map after unref");
}

static void check_2d(void)
{
   enum { W = 64, H = 32 };
   struct virgl_renderer_resource_create_args args = {
      .handle = 2, .target = 2, .format = 1, .bind = VIRGL_RES_BIND_SCANOUT,
      .width = W, .height = H, .depth = 1, .array_size = 1,
   };
   CHECK(virgl_renderer_resource_create(&args, NULL, 0) == 0, "resource_create");
   uint8_t *guest = malloc(W * H * 4), *back = calloc(W * H, 4);
   for (int i = 0; i < W * H * 4; i++)
      guest[i] = (uint8_t)(i * 7);
   struct iovec *iov = malloc(2 * sizeof(*iov));
   iov[0] = (struct iovec){guest, 1000};
   iov[1] = (struct iovec){guest + 1000, W * H * 4 - 1000};
   CHECK(virgl_renderer_resource_attach_iov(2, iov, 2) == 0, "attach_iov");
   struct virgl_box box = {0, 0, 0, W, H, 1};
   CHECK(virgl_renderer_transfer_write_iov(2, 0, 0, 0, 0, &box, 0, NULL, 0) == 0, "write");
   struct iovec out = {back, W * H * 4};
   CHECK(virgl_renderer_transfer_read_iov(2, 0, 0, 0, 0, &box, 0, &out, 1) == 0, "read");
   CHECK(memcmp(guest, back, W * H * 4) == 0, "2D round trip differs");
   struct virgl_box outside = {60, 0, 0, 8, 1, 1};
   CHECK(virgl_renderer_transfer_write_iov(2, 0, 0, 0, 0, &outside, 0, NULL, 0) < 0, "oob box");
   struct virgl_renderer_resource_info info;
   CHECK(virgl_renderer_resource_get_info(2, &info) == 0 && info.width == W && info.height == H &&
         info.stride == W * 4 && info.handle == 2, "get_info");
   struct iovec *got = NULL;
   int ngot = 0;
   virgl_renderer_resource_detach_iov(2, &got, &ngot);
   CHECK(got == iov && ngot == 2, "detach_iov gave back %p/%d", (void *)got, ngot);
   free(got);
   virgl_renderer_resource_unref(2);
   CHECK(virgl_renderer_resource_get_info(2, &info) < 0, "info after unref");
   CHECK(virgl_renderer_resource_get_info(99, &info) < 0, "info of unknown resource");
   free(guest);
   free(back);
   printf("2d ok\n");
}

int main(int argc, char **argv)
{
   uint32_t expected = argc > 1 && strcmp(argv[1], "any") ? (uint32_t)strtoul(argv[1], NULL, 0) : 0;
   print_layout();
   int threads_before = count_threads();
   struct virgl_renderer_callbacks cb = {
      .version = 3, .write_fence = write_fence, .write_context_fence = write_context_fence,
   };
   int flags = VIRGL_RENDERER_VENUS | VIRGL_RENDERER_THREAD_SYNC | VIRGL_RENDERER_RENDER_SERVER;
   CHECK(virgl_renderer_init(&cookie_value, flags, &cb) == 0, "init");
   CHECK(virgl_renderer_init(&cookie_value, flags, &cb) < 0, "second init accepted");
   check_venus(expected);
   check_2d();

   /* reset: contexts and resources gone, the renderer usable again */
   CHECK(virgl_renderer_context_create_with_flags(3, 4, 0, NULL) == 0, "ctx 3");
   virgl_renderer_reset();
   CHECK(virgl_renderer_context_create_fence(3, 0, 0, 1) < 0, "ctx 3 survived reset");
   CHECK(virgl_renderer_context_create_with_flags(3, 4, 0, NULL) == 0, "ctx 3 after reset");
   uint8_t stream[64];
   struct virgl_renderer_resource_create_blob_args blob = {
      .res_handle = 5, .ctx_id = 3, .blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D,
      .blob_flags = VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE, .size = 4096,
   };
   CHECK(virgl_renderer_resource_create_blob(&blob) == 0, "blob after reset");
   void *map5 = NULL;
   uint64_t size5 = 0;
   CHECK(virgl_renderer_resource_map(5, &map5, &size5) == 0 && size5 == 4096, "map 5");
   CHECK(virgl_renderer_submit_cmd(stream, 3, (int)(eiv_stream(stream, 5, 4096) / 4)) == 0,
         "submit after reset");

   /* a blob outlives its context until unreferenced (QEMU unmaps and unrefs afterwards) */
   virgl_renderer_context_destroy(3);
   CHECK(virgl_renderer_resource_unmap(5) == 0, "unmap after context destroy");
   CHECK(((uint8_t *)map5)[0] == 137, "the reply (written before) is readable after destroy");
   virgl_renderer_resource_unref(5);
   CHECK(virgl_renderer_resource_unmap(5) < 0, "unmap after unref");
   virgl_renderer_cleanup(&cookie_value);
   int threads_after = count_threads();
   printf("threads before=%d after=%d\n", threads_before, threads_after);
   CHECK(threads_after == threads_before, "threads left: %d -> %d", threads_before, threads_after);
   CHECK(virgl_renderer_context_create_with_flags(4, 4, 0, NULL) < 0, "context after cleanup");
   CHECK(virgl_renderer_init(&cookie_value, flags, &cb) == 0, "init after cleanup");
   virgl_renderer_cleanup(&cookie_value);
   printf("OK\n");
   return 0;
}
