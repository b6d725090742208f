/*
 * zink_render: renders a known OpenGL ES 3.0 scene into an offscreen framebuffer object on an
 * EGL surfaceless display (no window, no swapchain), reads it back with glReadPixels, checks
 * the pixels whose values are exact by construction, and prints a hash of the whole picture.
 *
 * Run it with LIBGL_ALWAYS_SOFTWARE=1 GALLIUM_DRIVER=zink to get Mesa's GL-on-Vulkan (zink);
 * the Vulkan driver under zink is whatever the Vulkan loader picks (VK_DRIVER_FILES).
 *
 * The scene (64x64 RGBA8):
 *   - cleared to (32, 64, 96, 255);
 *   - left half (x < 32): a quad sampling an 8x8 checkerboard texture (NEAREST), so pixel
 *     (x, y) shows texel (x / 4, y / 8): exactly A or B below;
 *   - right half: a triangle with per-vertex colours (interpolated: checked by hash only,
 *     against the same program on another driver stack);
 *   - pixel row 0..3 of the right half is outside the triangle: clear colour.
 *
 * Output lines (stdout):
 *   renderer: <GL_RENDERER>
 *   version: <GL_VERSION>
 *   pixels: 64x64 fnv1a64=<16 hex digits>
 *   zink-render OK checked=<n>
 * Exit status 0 only when every checked pixel matched.
 *
 * Build: cc -O1 -o zink_render zink_render.c -lEGL -lGLESv2
 */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 64
#define H 64
#define TEX 8

static const uint8_t CLEAR[4] = {32, 64, 96, 255};
static const uint8_t CHECK_A[4] = {255, 128, 0, 255};
static const uint8_t CHECK_B[4] = {0, 16, 240, 255};

static void die(const char *what)
{
    fprintf(stderr, "zink_render: %s failed (EGL error 0x%x, GL error 0x%x)\n", what,
            eglGetError(), glGetError());
    exit(1);
}

/* An EGL display on Mesa's surfaceless platform with a current GLES 3 context. */
static void make_context(void)
{
    PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
        (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
    if (!get_display)
        die("eglGetProcAddress(eglGetPlatformDisplayEXT)");
    EGLDisplay dpy = get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
    EGLint major, minor;
    if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, &major, &minor))
        die("eglInitialize (surfaceless)");
    if (!eglBindAPI(EGL_OPENGL_ES_API))
        die("eglBindAPI");
    const EGLint ctx_attribs[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_NONE};
    /* EGL_KHR_no_config_context / EGL_MESA_configless_context: no config needed. */
    EGLContext ctx = eglCreateContext(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, ctx_attribs);
    if (ctx == EGL_NO_CONTEXT)
        die("eglCreateContext");
    if (!eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx))
        die("eglMakeCurrent (no surface)");
}

static GLuint shader(GLenum kind, const char *src)
{
    GLuint s = glCreateShader(kind);
    glShaderSource(s, 1, &src, NULL);
    glCompileShader(s);
    GLint ok = 0;
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[1024];
        glGetShaderInfoLog(s, sizeof log, NULL, log);
        fprintf(stderr, "zink_render: shader compile: %s\n", log);
        exit(1);
    }
    return s;
}

static GLuint program(const char *vs, const char *fs)
{
    GLuint p = glCreateProgram();
    glAttachShader(p, shader(GL_VERTEX_SHADER, vs));
    glAttachShader(p, shader(GL_FRAGMENT_SHADER, fs));
    glBindAttribLocation(p, 0, "pos");
    glBindAttribLocation(p, 1, "attr");
    glLinkProgram(p);
    GLint ok = 0;
    glGetProgramiv(p, GL_LINK_STATUS, &ok);
    if (!ok)
        die("glLinkProgram");
    return p;
}

/* An RGBA8 colour attachment W x H, bound as the draw and read framebuffer. */
static void make_framebuffer(void)
{
    GLuint rb, fb;
    glGenRenderbuffers(1, &rb);
    glBindRenderbuffer(GL_RENDERBUFFER, rb);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, W, H);
    glGenFramebuffers(1, &fb);
    glBindFramebuffer(GL_FRAMEBUFFER, fb);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rb);
    if (glCheckFramebufferStatus(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE)
        die("glCheckFramebufferStatus");
    glViewport(0, 0, W, H);
}

static const uint8_t *checker(int tx, int ty)
{
    return ((tx + ty) & 1) ? CHECK_B : CHECK_A;
}

static void upload_checkerboard(void)
{
    uint8_t texels[TEX * TEX * 4];
    for (int y = 0; y < TEX; y++)
        for (int x = 0; x < TEX; x++)
            memcpy(&texels[(y * TEX + x) * 4], checker(x, y), 4);
    GLuint tex;
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, TEX, TEX, 0, GL_RGBA, GL_UNSIGNED_BYTE, texels);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
}

static void draw(GLuint prog, const GLfloat *verts, int count, int attr_size)
{
    GLuint vbo;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    GLsizei stride = (GLsizei)((2 + attr_size) * sizeof(GLfloat));
    glBufferData(GL_ARRAY_BUFFER, (GLsizeiptr)(count * stride), verts, GL_STATIC_DRAW);
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, stride, (void *)0);
    glVertexAttribPointer(1, attr_size, GL_FLOAT, GL_FALSE, stride,
                          (void *)(2 * sizeof(GLfloat)));
    glUseProgram(prog);
    glDrawArrays(count == 4 ? GL_TRIANGLE_STRIP : GL_TRIANGLES, 0, count);
}

static void render(void)
{
    static const char *vs_tex = "#version 300 es\nin vec2 pos; in vec2 attr; out vec2 uv;\n"
                                "void main() { uv = attr; gl_Position = vec4(pos, 0, 1); }\n";
    static const char *fs_tex = "#version 300 es\nprecision highp float; uniform sampler2D t;\n"
                                "in vec2 uv; out vec4 c; void main() { c = texture(t, uv); }\n";
    static const char *vs_col = "#version 300 es\nin vec2 pos; in vec3 attr; out vec3 col;\n"
                                "void main() { col = attr; gl_Position = vec4(pos, 0, 1); }\n";
    static const char *fs_col = "#version 300 es\nprecision highp float; in vec3 col;\n"
                                "out vec4 c; void main() { c = vec4(col, 1); }\n";
    /* Left half, NDC x in [-1, 0]; uv (0,0) at the bottom-left (framebuffer row 0). */
    static const GLfloat quad[] = {-1, -1, 0, 0, 0, -1, 1, 0, -1, 1, 0, 1, 0, 1, 1, 1};
    /* Right half, bottom edge at NDC y = -0.75 (rows 0..7 stay clear). */
    static const GLfloat tri[] = {0.05f, -0.75f, 1, 0, 0, 0.95f, -0.75f, 0, 1, 0,
                                  0.5f,  0.95f,  0, 0, 1};
    glClearColor(CLEAR[0] / 255.0f, CLEAR[1] / 255.0f, CLEAR[2] / 255.0f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    upload_checkerboard();
    draw(program(vs_tex, fs_tex), quad, 4, 2);
    draw(program(vs_col, fs_col), tri, 3, 3);
    if (glGetError() != GL_NO_ERROR)
        die("rendering");
}

static int check_pixel(const uint8_t *px, int x, int y, const uint8_t *want)
{
    const uint8_t *got = &px[(y * W + x) * 4];
    if (memcmp(got, want, 4) == 0)
        return 0;
    fprintf(stderr, "zink_render: pixel (%d, %d) = (%u, %u, %u, %u), want (%u, %u, %u, %u)\n",
            x, y, got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
    return 1;
}

/* Checks the exact pixels: the whole textured half, and rows 0..7 of the right half. */
static int check(const uint8_t *px, int *checked)
{
    int bad = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W / 2; x++, (*checked)++)
            bad += check_pixel(px, x, y, checker(x / 4, y / 8));
    for (int y = 0; y < 8; y++)
        for (int x = W / 2; x < W; x++, (*checked)++)
            bad += check_pixel(px, x, y, CLEAR);
    return bad;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int main(void)
{
    make_context();
    printf("renderer: %s\n", (const char *)glGetString(GL_RENDERER));
    printf("version: %s\n", (const char *)glGetString(GL_VERSION));
    make_framebuffer();
    render();
    static uint8_t px[W * H * 4];
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, W, H, GL_RGBA, GL_UNSIGNED_BYTE, px);
    if (glGetError() != GL_NO_ERROR)
        die("glReadPixels");
    printf("pixels: %dx%d fnv1a64=%016llx\n", W, H, (unsigned long long)fnv1a64(px, sizeof px));
    int checked = 0;
    int bad = check(px, &checked);
    if (bad) {
        fprintf(stderr, "zink_render: %d of %d checked pixels wrong\n", bad, checked);
        return 1;
    }
    printf("zink-render OK checked=%d\n", checked);
    fflush(stdout);
    return 0;
}
