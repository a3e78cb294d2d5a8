/*
 * xyp_blas: row-major float32 kernels for the engine over OpenBLAS, on Float32Array views (the
 * engine passes the WASM heap itself, so inputs are read and outputs written in place, no copies).
 *
 * Every entry point checks that each index it will touch lies inside its array before calling into
 * BLAS, so a wrong shape throws a JS error instead of corrupting the heap.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "xyp_blas: N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

typedef struct {
  float* data;
  size_t length;
} F32;

static bool get_f32(napi_env env, napi_value v, F32* out, const char* what) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "xyp_blas: %s must be a Float32Array", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  out->data = data;
  out->length = length;
  return true;
}

static bool get_i64(napi_env env, napi_value v, int64_t* out, const char* what) {
  if (napi_get_value_int64(env, v, out) != napi_ok || *out < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "xyp_blas: %s must be a non-negative integer", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

static bool get_f64(napi_env env, napi_value v, double* out, const char* what) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "xyp_blas: %s must be a number", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

static bool get_bool(napi_env env, napi_value v, bool* out, const char* what) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "xyp_blas: %s must be a boolean", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

/*
 * A row-major matrix stored as `rows` rows of `cols` values, row stride `ld`, the b-th of `batch`
 * starting at `off + b·stride`: its last element is at off + (batch−1)·stride + (rows−1)·ld + cols − 1.
 */
static bool fits(napi_env env, const F32* a, int64_t off, int64_t stride, int64_t batch, int64_t rows, int64_t cols, int64_t ld, const char* what) {
  if (rows == 0 || cols == 0 || batch == 0) return true;
  if (ld < cols || off + (batch - 1) * stride + (rows - 1) * ld + cols > (int64_t)a->length) {
    char msg[128];
    snprintf(msg, sizeof msg, "xyp_blas: %s is out of bounds for its array", what);
    napi_throw_range_error(env, NULL, msg);
    return false;
  }
  return true;
}

/*
 * gemm(transA, transB, batch, M, N, K, alpha,
 *      A, aOff, aStride, lda, B, bOff, bStride, ldb, beta, C, cOff, cStride, ldc)
 *
 * For b < batch: C_b[M,N] = alpha · op(A_b) · op(B_b) + beta · C_b, op(X) = Xᵀ when its flag is set.
 * A_b is stored `[M,K]` (or `[K,M]` transposed) at A[aOff + b·aStride] with row stride lda; likewise
 * B_b `[K,N]` (`[N,K]`) and C_b `[M,N]`. A stride of 0 broadcasts one matrix over the batch.
 */
static napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 20;
  napi_value argv[20];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 20) {
    napi_throw_type_error(env, NULL, "xyp_blas: gemm takes 20 arguments");
    return NULL;
  }
  bool ta, tb;
  int64_t batch, m, n, k, aOff, aStride, lda, bOff, bStride, ldb, cOff, cStride, ldc;
  double alpha, beta;
  F32 a, b, c;
  if (!get_bool(env, argv[0], &ta, "transA") || !get_bool(env, argv[1], &tb, "transB") || !get_i64(env, argv[2], &batch, "batch") ||
      !get_i64(env, argv[3], &m, "M") || !get_i64(env, argv[4], &n, "N") || !get_i64(env, argv[5], &k, "K") ||
      !get_f64(env, argv[6], &alpha, "alpha") || !get_f32(env, argv[7], &a, "A") || !get_i64(env, argv[8], &aOff, "aOff") ||
      !get_i64(env, argv[9], &aStride, "aStride") || !get_i64(env, argv[10], &lda, "lda") || !get_f32(env, argv[11], &b, "B") ||
      !get_i64(env, argv[12], &bOff, "bOff") || !get_i64(env, argv[13], &bStride, "bStride") || !get_i64(env, argv[14], &ldb, "ldb") ||
      !get_f64(env, argv[15], &beta, "beta") || !get_f32(env, argv[16], &c, "C") || !get_i64(env, argv[17], &cOff, "cOff") ||
      !get_i64(env, argv[18], &cStride, "cStride") || !get_i64(env, argv[19], &ldc, "ldc"))
    return NULL;
  if (!fits(env, &a, aOff, aStride, batch, ta ? k : m, ta ? m : k, lda, "A") || !fits(env, &b, bOff, bStride, batch, tb ? n : k, tb ? k : n, ldb, "B") ||
      !fits(env, &c, cOff, cStride, batch, m, n, ldc, "C"))
    return NULL;
  if (m == 0 || n == 0) return NULL;
  for (int64_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, (float)alpha,
                a.data + aOff + i * aStride, (blasint)lda, b.data + bOff + i * bStride, (blasint)ldb, (float)beta, c.data + cOff + i * cStride,
                (blasint)ldc);
  }
  return NULL;
}


/*
 * Threads. `run_parallel(count, fn, ctx, workers)` calls fn(ctx, i, worker) for every i < count, worker
 * w taking i ≡ w (mod workers), on `workers` threads (the caller is worker 0). OpenBLAS is set to one
 * thread meanwhile, since the tasks call sgemm on small matrices (one attention head,
 * `[256,64]·[64,256]`), where splitting a single product gains little; it is restored afterwards.
 * `workers` defaults to OpenBLAS's thread count (`setThreads`).
 */
#define MAX_WORKERS 16

typedef void (*task_fn)(void* ctx, int64_t i, int worker);

typedef struct {
  task_fn fn;
  void* ctx;
  int64_t count;
  int worker;
  int workers;
} share_t;

static void* run_share(void* arg) {
  share_t* s = arg;
  for (int64_t i = s->worker; i < s->count; i += s->workers) s->fn(s->ctx, i, s->worker);
  return NULL;
}

static int clamp_workers(int64_t count, int workers) {
  if (workers > MAX_WORKERS) workers = MAX_WORKERS;
  if (workers > count) workers = (int)count;
  return workers < 1 ? 1 : workers;
}

static void run_parallel(int64_t count, task_fn fn, void* ctx, int workers) {
  workers = clamp_workers(count, workers);
  share_t shares[MAX_WORKERS];
  pthread_t threads[MAX_WORKERS];
  bool started[MAX_WORKERS] = {false};
  const int blasThreads = openblas_get_num_threads();
  if (workers > 1) openblas_set_num_threads(1);
  for (int w = 0; w < workers; w++) shares[w] = (share_t){fn, ctx, count, w, workers};
  for (int w = 1; w < workers; w++) started[w] = pthread_create(&threads[w], NULL, run_share, &shares[w]) == 0;
  run_share(&shares[0]);
  for (int w = 1; w < workers; w++) {
    if (started[w]) pthread_join(threads[w], NULL);
    else run_share(&shares[w]); /* the thread did not start: do its share here */
  }
  if (workers > 1) openblas_set_num_threads(blasThreads);
}

/*
 * Element-wise kernels split [0, n) into one contiguous range per worker, and run on one thread below
 * `GRAIN` items, where starting a thread (tens of µs) costs more than it saves.
 */
#define GRAIN 32768

typedef void (*range_fn)(void* ctx, int64_t begin, int64_t end, int worker);

typedef struct {
  range_fn fn;
  void* ctx;
  int64_t n;
  int64_t parts;
} ranges_t;

static void run_range(void* ctx, int64_t i, int worker) {
  const ranges_t* r = ctx;
  const int64_t begin = r->n * i / r->parts, end = r->n * (i + 1) / r->parts;
  if (end > begin) r->fn(r->ctx, begin, end, worker);
}

/* Runs fn over [0, n) in ranges; `cost` is the work per item in elements (e.g. a row's width). Returns the workers used. */
static int run_ranges(int64_t n, int64_t cost, range_fn fn, void* ctx) {
  const int workers = n * cost < GRAIN ? 1 : clamp_workers(n, openblas_get_num_threads());
  ranges_t r = {fn, ctx, n, workers};
  if (workers == 1) fn(ctx, 0, n, 0);
  else run_parallel(workers, run_range, &r, workers);
  return workers;
}

/*
 * The fused kernels take the WASM heap (one Float32Array) and float indices into it, one per tensor;
 * int32 tensors (targets, row indices) live in the same heap and are read through the same index.
 * `parse` reads argv[0] as the heap and argv[1..count] as numbers.
 */
#define MAX_ARGS 24

static bool parse(napi_env env, napi_callback_info info, size_t count, F32* heap, double* vals) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count + 1) {
    napi_throw_type_error(env, NULL, "xyp_blas: wrong number of arguments");
    return false;
  }
  if (!get_f32(env, argv[0], heap, "heap")) return false;
  for (size_t i = 0; i < count; i++)
    if (!get_f64(env, argv[i + 1], &vals[i], "argument")) return false;
  return true;
}

/* A tensor of `len` floats at heap index `off` must lie inside the heap. */
static bool region(napi_env env, const F32* heap, double off, double len, const char* what) {
  if (off < 0 || len < 0 || off != (double)(int64_t)off || len != (double)(int64_t)len || off + len > (double)heap->length) {
    char msg[128];
    snprintf(msg, sizeof msg, "xyp_blas: %s is out of bounds for the heap", what);
    napi_throw_range_error(env, NULL, msg);
    return false;
  }
  return true;
}

/* Every int32 index of `idx[0..n)` must lie in [0, limit). */
static bool indices_in(napi_env env, const int32_t* idx, int64_t n, int64_t limit, const char* what) {
  for (int64_t i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= limit) {
      char msg[128];
      snprintf(msg, sizeof msg, "xyp_blas: %s has an index outside [0, %lld)", what, (long long)limit);
      napi_throw_range_error(env, NULL, msg);
      return false;
    }
  }
  return true;
}

#define AT(i) (heap.data + (int64_t)a[i])
#define AT_I32(i) ((int32_t*)(heap.data + (int64_t)a[i]))

/* ---- cross-entropy ---- */

typedef struct {
  const float* z;
  const int32_t* t;
  const float* dnll;
  float *nll, *p, *dz;
  int64_t vocab;
} xent_t;

static void xent_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const xent_t* c = ctx;
  const int64_t V = c->vocab;
  for (int64_t r = begin; r < end; r++) {
    const float* zr = c->z + r * V;
    float* pr = c->p + r * V;
    float max = zr[0];
    for (int64_t j = 1; j < V; j++) max = zr[j] > max ? zr[j] : max;
    float sum = 0;
    for (int64_t j = 0; j < V; j++) {
      pr[j] = expf(zr[j] - max);
      sum += pr[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < V; j++) pr[j] *= inv;
    c->nll[r] = max + logf(sum) - zr[c->t[r]];
  }
}

/*
 * crossEntropy(heap, logits, targets, nll, probs, rows, vocab)
 * Per row z `[V]`, target t: p = softmax(z) `[V]` (kept for the gradient), nll = logsumexp(z) − z[t].
 */
static napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[6];
  if (!parse(env, info, 6, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[4];
  if (!region(env, &heap, a[0], a[4] * a[5], "logits") || !region(env, &heap, a[1], a[4], "targets") || !region(env, &heap, a[2], a[4], "nll") ||
      !region(env, &heap, a[3], a[4] * a[5], "probs") || !indices_in(env, AT_I32(1), rows, (int64_t)a[5], "targets"))
    return NULL;
  xent_t c = {.z = AT(0), .t = AT_I32(1), .nll = AT(2), .p = AT(3), .vocab = (int64_t)a[5]};
  run_ranges(rows, c.vocab, xent_rows, &c);
  return NULL;
}

static void xent_grad_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const xent_t* c = ctx;
  const int64_t V = c->vocab;
  for (int64_t r = begin; r < end; r++) {
    const float g = c->dnll[r];
    const float* pr = c->p + r * V;
    float* dr = c->dz + r * V;
    for (int64_t j = 0; j < V; j++) dr[j] = pr[j] * g;
    dr[c->t[r]] -= g;
  }
}

/* crossEntropyGrad(heap, probs, targets, dnll, dz, rows, vocab): dz = (p − onehot(t)) · dnll, per row. */
static napi_value CrossEntropyGrad(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[6];
  if (!parse(env, info, 6, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[4];
  if (!region(env, &heap, a[0], a[4] * a[5], "probs") || !region(env, &heap, a[1], a[4], "targets") || !region(env, &heap, a[2], a[4], "dnll") ||
      !region(env, &heap, a[3], a[4] * a[5], "dz") || !indices_in(env, AT_I32(1), rows, (int64_t)a[5], "targets"))
    return NULL;
  xent_t c = {.p = AT(0), .t = AT_I32(1), .dnll = AT(2), .dz = AT(3), .vocab = (int64_t)a[5]};
  run_ranges(rows, c.vocab, xent_grad_rows, &c);
  return NULL;
}

/* Per row: lse = logsumexp(z) and nll = lse − z[t]; no softmax is stored (`p` holds lse `[rows]`). */
static void xent_lse_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const xent_t* c = ctx;
  const int64_t V = c->vocab;
  for (int64_t r = begin; r < end; r++) {
    const float* zr = c->z + r * V;
    float max = zr[0];
    for (int64_t j = 1; j < V; j++) max = zr[j] > max ? zr[j] : max;
    float sum = 0;
    for (int64_t j = 0; j < V; j++) sum += expf(zr[j] - max);
    const float lse = max + logf(sum);
    c->p[r] = lse;
    c->nll[r] = lse - zr[c->t[r]];
  }
}

/*
 * crossEntropyLse(heap, logits, targets, nll, lse, rows, vocab)
 * Per row z `[V]`, target t: lse = logsumexp(z) `[rows]` (kept for the gradient), nll = lse − z[t].
 * Reads the logits once and writes no `[rows, V]` softmax: the gradient recomputes it from z and lse.
 */
static napi_value CrossEntropyLse(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[6];
  if (!parse(env, info, 6, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[4];
  if (!region(env, &heap, a[0], a[4] * a[5], "logits") || !region(env, &heap, a[1], a[4], "targets") || !region(env, &heap, a[2], a[4], "nll") ||
      !region(env, &heap, a[3], a[4], "lse") || !indices_in(env, AT_I32(1), rows, (int64_t)a[5], "targets"))
    return NULL;
  xent_t c = {.z = AT(0), .t = AT_I32(1), .nll = AT(2), .p = AT(3), .vocab = (int64_t)a[5]};
  run_ranges(rows, c.vocab, xent_lse_rows, &c);
  return NULL;
}

typedef struct {
  const float *z, *lse, *dnll;
  const int32_t* t;
  float* dz;
  int64_t vocab;
} xent_lse_grad_t;

static void xent_lse_grad_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const xent_lse_grad_t* c = ctx;
  const int64_t V = c->vocab;
  for (int64_t r = begin; r < end; r++) {
    const float g = c->dnll[r], lse = c->lse[r];
    const float* zr = c->z + r * V;
    float* dr = c->dz + r * V;
    for (int64_t j = 0; j < V; j++) dr[j] = expf(zr[j] - lse) * g;
    dr[c->t[r]] -= g;
  }
}

/* crossEntropyLseGrad(heap, logits, lse, targets, dnll, dz, rows, vocab): dz = (exp(z − lse) − onehot(t)) · dnll, per row. */
static napi_value CrossEntropyLseGrad(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[7];
  if (!parse(env, info, 7, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[5];
  if (!region(env, &heap, a[0], a[5] * a[6], "logits") || !region(env, &heap, a[1], a[5], "lse") || !region(env, &heap, a[2], a[5], "targets") ||
      !region(env, &heap, a[3], a[5], "dnll") || !region(env, &heap, a[4], a[5] * a[6], "dz") || !indices_in(env, AT_I32(2), rows, (int64_t)a[6], "targets"))
    return NULL;
  xent_lse_grad_t c = {.z = AT(0), .lse = AT(1), .t = AT_I32(2), .dnll = AT(3), .dz = AT(4), .vocab = (int64_t)a[6]};
  run_ranges(rows, c.vocab, xent_lse_grad_rows, &c);
  return NULL;
}

/* ---- GELU ---- */

typedef struct {
  const float *u, *dy;
  float *y, *du;
} gelu_t;

static void gelu_range(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const gelu_t* c = ctx;
  for (int64_t i = begin; i < end; i++) c->y[i] = c->u[i] / (1.0f + expf(-1.702f * c->u[i]));
}

/* gelu(heap, u, y, n): y = u · σ(1.702 u). */
static napi_value Gelu(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[3];
  if (!parse(env, info, 3, &heap, a)) return NULL;
  if (!region(env, &heap, a[0], a[2], "u") || !region(env, &heap, a[1], a[2], "y")) return NULL;
  gelu_t c = {.u = AT(0), .y = AT(1)};
  run_ranges((int64_t)a[2], 1, gelu_range, &c);
  return NULL;
}

static void gelu_grad_range(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const gelu_t* c = ctx;
  for (int64_t i = begin; i < end; i++) {
    const float u = c->u[i];
    const float s = 1.0f / (1.0f + expf(-1.702f * u));
    c->du[i] = c->dy[i] * (s + 1.702f * u * s * (1.0f - s));
  }
}

/* geluGrad(heap, u, dy, du, n): du = dy · (σ + 1.702 · u · σ · (1 − σ)), σ = σ(1.702 u). */
static napi_value GeluGrad(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[4];
  if (!parse(env, info, 4, &heap, a)) return NULL;
  if (!region(env, &heap, a[0], a[3], "u") || !region(env, &heap, a[1], a[3], "dy") || !region(env, &heap, a[2], a[3], "du")) return NULL;
  gelu_t c = {.u = AT(0), .dy = AT(1), .du = AT(2)};
  run_ranges((int64_t)a[3], 1, gelu_grad_range, &c);
  return NULL;
}

/* ---- RMSNorm ---- */

typedef struct {
  const float *x, *g, *dy;
  float *y, *r, *dx, *dgParts;
  const float* rIn;
  int64_t d;
  float eps;
} rms_t;

static void rms_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const rms_t* c = ctx;
  const int64_t d = c->d;
  for (int64_t i = begin; i < end; i++) {
    const float* xi = c->x + i * d;
    float* yi = c->y + i * d;
    float ss = 0;
    for (int64_t j = 0; j < d; j++) ss += xi[j] * xi[j];
    const float r = 1.0f / sqrtf(ss / (float)d + c->eps);
    c->r[i] = r;
    for (int64_t j = 0; j < d; j++) yi[j] = xi[j] * r * c->g[j];
  }
}

/*
 * rmsNorm(heap, x, g, y, r, rows, d, eps)
 * Per row x `[D]`: r = 1/√(mean(x²) + ε) (kept for the gradient), y = x · r · g.
 */
static napi_value RmsNorm(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[7];
  if (!parse(env, info, 7, &heap, a)) return NULL;
  if (!region(env, &heap, a[0], a[4] * a[5], "x") || !region(env, &heap, a[1], a[5], "g") || !region(env, &heap, a[2], a[4] * a[5], "y") ||
      !region(env, &heap, a[3], a[4], "r"))
    return NULL;
  rms_t c = {.x = AT(0), .g = AT(1), .y = AT(2), .r = AT(3), .d = (int64_t)a[5], .eps = (float)a[6]};
  run_ranges((int64_t)a[4], c.d, rms_rows, &c);
  return NULL;
}

static void rms_grad_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  const rms_t* c = ctx;
  const int64_t d = c->d;
  float* dg = c->dgParts + (int64_t)worker * d;
  for (int64_t i = begin; i < end; i++) {
    const float* xi = c->x + i * d;
    const float* dyi = c->dy + i * d;
    float* dxi = c->dx + i * d;
    const float r = c->rIn[i];
    float dot = 0;
    for (int64_t j = 0; j < d; j++) dot += dyi[j] * c->g[j] * xi[j];
    const float k = r * r * r * dot / (float)d;
    for (int64_t j = 0; j < d; j++) {
      dxi[j] = r * dyi[j] * c->g[j] - xi[j] * k;
      dg[j] += dyi[j] * xi[j] * r;
    }
  }
}

/*
 * rmsNormGrad(heap, x, g, r, dy, dx, dg, rows, d)
 * dx_i = r_i · (dy_i ∘ g) − x_i · r_i³ · Σ_j(dy_ij g_j x_ij) / D,  dg = Σ_i dy_i ∘ x_i · r_i.
 * Each worker sums its rows' dg into its own `[D]` part; the parts are added in worker order.
 */
static napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[8];
  if (!parse(env, info, 8, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[6], d = (int64_t)a[7];
  if (!region(env, &heap, a[0], a[6] * a[7], "x") || !region(env, &heap, a[1], a[7], "g") || !region(env, &heap, a[2], a[6], "r") ||
      !region(env, &heap, a[3], a[6] * a[7], "dy") || !region(env, &heap, a[4], a[6] * a[7], "dx") || !region(env, &heap, a[5], a[7], "dg"))
    return NULL;
  float* parts = calloc((size_t)(MAX_WORKERS * d), sizeof(float));
  if (!parts) {
    napi_throw_error(env, NULL, "xyp_blas: out of memory");
    return NULL;
  }
  rms_t c = {.x = AT(0), .g = AT(1), .rIn = AT(2), .dy = AT(3), .dx = AT(4), .dgParts = parts, .d = d};
  const int workers = run_ranges(rows, d, rms_grad_rows, &c);
  float* dg = AT(5);
  for (int64_t j = 0; j < d; j++) {
    float sum = 0;
    for (int w = 0; w < workers; w++) sum += parts[(int64_t)w * d + j];
    dg[j] = sum;
  }
  free(parts);
  return NULL;
}

/* ---- rotary ---- */

typedef struct {
  const float *x, *cos, *sin;
  float* y;
  int64_t heads, dh;
  float sign;
} rotary_t;

static void rotary_rows(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const rotary_t* c = ctx;
  const int64_t half = c->dh / 2;
  for (int64_t i = begin; i < end; i++) {
    const float* cs = c->cos + i * half;
    const float* sn = c->sin + i * half;
    for (int64_t h = 0; h < c->heads; h++) {
      const float* xh = c->x + (i * c->heads + h) * c->dh;
      float* yh = c->y + (i * c->heads + h) * c->dh;
      for (int64_t j = 0; j < half; j++) {
        const float x1 = xh[j], x2 = xh[j + half];
        yh[j] = x1 * cs[j] - c->sign * x2 * sn[j];
        yh[j + half] = x2 * cs[j] + c->sign * x1 * sn[j];
      }
    }
  }
}

/*
 * rotary(heap, x, cos, sin, y, rows, heads, headWidth, sign)
 * x, y `[rows, heads·Dh]`, cos/sin `[rows, Dh/2]`; per head, halves x₁ x₂ `[Dh/2]`:
 * y₁ = x₁·cos − s·x₂·sin, y₂ = x₂·cos + s·x₁·sin with s = sign (−1 applies the inverse rotation, the gradient).
 */
static napi_value Rotary(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[8];
  if (!parse(env, info, 8, &heap, a)) return NULL;
  const double half = (double)((int64_t)a[6] / 2);
  if (!region(env, &heap, a[0], a[4] * a[5] * a[6], "x") || !region(env, &heap, a[1], a[4] * half, "cos") || !region(env, &heap, a[2], a[4] * half, "sin") ||
      !region(env, &heap, a[3], a[4] * a[5] * a[6], "y"))
    return NULL;
  rotary_t c = {.x = AT(0), .cos = AT(1), .sin = AT(2), .y = AT(3), .heads = (int64_t)a[5], .dh = (int64_t)a[6], .sign = (float)a[7]};
  run_ranges((int64_t)a[4], c.heads * c.dh, rotary_rows, &c);
  return NULL;
}

/* ---- attention ---- */

typedef struct {
  const float *q, *k, *v, *bias, *dO;
  float *probs, *o, *dq, *dk, *dv, *scratch;
  int64_t T, H, dh, D;
  float scale;
} attention_t;

/* Head i = b·H + h of `attention`. */
static void attention_head(void* ctx, int64_t i, int worker) {
  (void)worker;
  const attention_t* c = ctx;
  const int64_t T = c->T, D = c->D, b = i / c->H, h = i % c->H;
  const int64_t base = b * T * D + h * c->dh;
  float* p = c->probs + i * T * T;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)T, (blasint)c->dh, c->scale, c->q + base, (blasint)D, c->k + base, (blasint)D, 0.0f,
              p, (blasint)T);
  for (int64_t r = 0; r < T; r++) {
    float* row = p + r * T;
    const float* br = c->bias + (b * T + r) * T;
    float max = -FLT_MAX;
    for (int64_t j = 0; j < T; j++) {
      row[j] += br[j];
      max = row[j] > max ? row[j] : max;
    }
    /*
     * Masked scores (bias −1e9) are far below expf's range: libmvec's vector expf sends every lane
     * group holding such an argument down a scalar fallback, doubling the kernel's time under a causal
     * mask. Clamped arguments stay on the vector path, and the masked entries are set to exactly 0
     * (what expf gives them: e^-87 is already below every unmasked term's rounding).
     */
    float sum = 0;
    for (int64_t j = 0; j < T; j++) {
      const float z = row[j] - max;
      const float e = expf(z > -87.0f ? z : -87.0f);
      row[j] = z > -87.0f ? e : 0.0f;
      sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < T; j++) row[j] *= inv;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)c->dh, (blasint)T, 1.0f, p, (blasint)T, c->v + base, (blasint)D, 0.0f, c->o + base,
              (blasint)D);
}

/* Head i = b·H + h of `attentionGrad`; each worker has its own `[T, T]` scratch. */
static void attention_grad_head(void* ctx, int64_t i, int worker) {
  const attention_t* c = ctx;
  const int64_t T = c->T, D = c->D, b = i / c->H, h = i % c->H;
  const int64_t base = b * T * D + h * c->dh;
  const float* p = c->probs + i * T * T;
  float* ds = c->scratch + (int64_t)worker * T * T;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)T, (blasint)c->dh, (blasint)T, 1.0f, p, (blasint)T, c->dO + base, (blasint)D, 0.0f, c->dv + base,
              (blasint)D);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)T, (blasint)c->dh, 1.0f, c->dO + base, (blasint)D, c->v + base, (blasint)D, 0.0f, ds,
              (blasint)T);
  for (int64_t r = 0; r < T; r++) {
    const float* pr = p + r * T;
    float* dr = ds + r * T;
    float dot = 0;
    for (int64_t j = 0; j < T; j++) dot += pr[j] * dr[j];
    for (int64_t j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)c->dh, (blasint)T, c->scale, ds, (blasint)T, c->k + base, (blasint)D, 0.0f,
              c->dq + base, (blasint)D);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)T, (blasint)c->dh, (blasint)T, c->scale, ds, (blasint)T, c->q + base, (blasint)D, 0.0f,
              c->dk + base, (blasint)D);
}

/*
 * attention(heap, q, k, v, bias, probs, o, batch, seq, heads, headWidth, scale)
 * q, k, v, o `[B·T, H·Dh]` (token rows, head-major columns), bias `[B, T, T]`, probs `[B, H, T, T]`.
 * For each row b and head h, with Q = q[b·T.., h·Dh..] `[T, Dh]` (row stride H·Dh), likewise K, V:
 * P = softmax(scale · Q·Kᵀ + bias_b) `[T, T]` (kept for the gradient), O = P·V `[T, Dh]`.
 * The heads are strided views, so no transposes or copies happen; they run in parallel.
 */
static napi_value Attention(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[11];
  if (!parse(env, info, 11, &heap, a)) return NULL;
  const int64_t B = (int64_t)a[6], T = (int64_t)a[7], H = (int64_t)a[8], dh = (int64_t)a[9];
  const double act = a[6] * a[7] * a[8] * a[9];
  if (!region(env, &heap, a[0], act, "q") || !region(env, &heap, a[1], act, "k") || !region(env, &heap, a[2], act, "v") ||
      !region(env, &heap, a[3], a[6] * a[7] * a[7], "bias") || !region(env, &heap, a[4], a[6] * a[8] * a[7] * a[7], "probs") ||
      !region(env, &heap, a[5], act, "o"))
    return NULL;
  attention_t c = {
      .q = AT(0), .k = AT(1), .v = AT(2), .bias = AT(3), .probs = AT(4), .o = AT(5), .T = T, .H = H, .dh = dh, .D = H * dh, .scale = (float)a[10]};
  run_parallel(B * H, attention_head, &c, openblas_get_num_threads());
  return NULL;
}

/*
 * attentionGrad(heap, q, k, v, probs, dO, dq, dk, dv, scratch, workers, batch, seq, heads, headWidth, scale)
 * Per row b and head h (views as in `attention`), with a `[T, T]` scratch per worker
 * (scratch `[workers, T, T]`):
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),  dQ = scale · dS·K,  dK = scale · dSᵀ·Q.
 */
static napi_value AttentionGrad(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[15];
  if (!parse(env, info, 15, &heap, a)) return NULL;
  const int workers = (int)a[9];
  const int64_t B = (int64_t)a[10], T = (int64_t)a[11], H = (int64_t)a[12], dh = (int64_t)a[13];
  const double act = a[10] * a[11] * a[12] * a[13];
  if (workers < 1) {
    napi_throw_range_error(env, NULL, "xyp_blas: attentionGrad needs at least one worker");
    return NULL;
  }
  if (!region(env, &heap, a[0], act, "q") || !region(env, &heap, a[1], act, "k") || !region(env, &heap, a[2], act, "v") ||
      !region(env, &heap, a[3], a[10] * a[12] * a[11] * a[11], "probs") || !region(env, &heap, a[4], act, "dO") || !region(env, &heap, a[5], act, "dq") ||
      !region(env, &heap, a[6], act, "dk") || !region(env, &heap, a[7], act, "dv") || !region(env, &heap, a[8], a[9] * a[11] * a[11], "scratch"))
    return NULL;
  attention_t c = {.q = AT(0),
                   .k = AT(1),
                   .v = AT(2),
                   .probs = AT(3),
                   .dO = AT(4),
                   .dq = AT(5),
                   .dk = AT(6),
                   .dv = AT(7),
                   .scratch = AT(8),
                   .T = T,
                   .H = H,
                   .dh = dh,
                   .D = H * dh,
                   .scale = (float)a[14]};
  run_parallel(B * H, attention_grad_head, &c, workers);
  return NULL;
}

/* ---- embedding rows ---- */

/* gatherRows(heap, table, idx, out, rows, width, tableRows): out[i] = table[idx[i]], out `[rows, width]`. */
static napi_value GatherRows(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[6];
  if (!parse(env, info, 6, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[3], width = (int64_t)a[4];
  if (!region(env, &heap, a[0], a[5] * a[4], "table") || !region(env, &heap, a[1], a[3], "idx") || !region(env, &heap, a[2], a[3] * a[4], "out") ||
      !indices_in(env, AT_I32(1), rows, (int64_t)a[5], "idx"))
    return NULL;
  const float* table = AT(0);
  const int32_t* idx = AT_I32(1);
  float* out = AT(2);
  for (int64_t i = 0; i < rows; i++) memcpy(out + i * width, table + (int64_t)idx[i] * width, (size_t)width * sizeof(float));
  return NULL;
}

/* scatterAddRows(heap, dy, idx, dtable, rows, width, tableRows): dtable = Σ_i e_{idx[i]} dy[i], dtable `[tableRows, width]`. */
static napi_value ScatterAddRows(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[6];
  if (!parse(env, info, 6, &heap, a)) return NULL;
  const int64_t rows = (int64_t)a[3], width = (int64_t)a[4], tableRows = (int64_t)a[5];
  if (!region(env, &heap, a[0], a[3] * a[4], "dy") || !region(env, &heap, a[1], a[3], "idx") || !region(env, &heap, a[2], a[5] * a[4], "dtable") ||
      !indices_in(env, AT_I32(1), rows, tableRows, "idx"))
    return NULL;
  const float* dy = AT(0);
  const int32_t* idx = AT_I32(1);
  float* dt = AT(2);
  memset(dt, 0, (size_t)(tableRows * width) * sizeof(float));
  for (int64_t i = 0; i < rows; i++) {
    float* row = dt + (int64_t)idx[i] * width;
    const float* src = dy + i * width;
    for (int64_t j = 0; j < width; j++) row[j] += src[j];
  }
  return NULL;
}

/* ---- AdamW ---- */

typedef struct {
  float *p, *m, *v;
  const float* g;
  float lr, b1, b2, bc1, bc2, eps, wd, gs;
} adamw_inplace_t;

static void adamw_inplace_range(void* ctx, int64_t begin, int64_t end, int worker) {
  (void)worker;
  const adamw_inplace_t* c = ctx;
  float* restrict p = c->p;
  float* restrict mm = c->m;
  float* restrict vv = c->v;
  const float* restrict gg = c->g;
  for (int64_t i = begin; i < end; i++) {
    const float g = gg[i] * c->gs;
    const float m = c->b1 * mm[i] + (1.0f - c->b1) * g;
    const float v = c->b2 * vv[i] + (1.0f - c->b2) * g * g;
    mm[i] = m;
    vv[i] = v;
    p[i] = p[i] - c->lr * ((m / c->bc1) / (sqrtf(v / c->bc2) + c->eps) + c->wd * p[i]);
  }
}

/*
 * adamw(heap, p, g, m, v, pOut, mOut, vOut, n, lr, beta1, beta2, bc1, bc2, eps, weightDecay, gradScale)
 *   g ← g · gradScale,  m' = β₁m + (1−β₁)g,  v' = β₂v + (1−β₂)g²,
 *   p' = p − lr · ( (m'/bc1) / (√(v'/bc2) + ε) + λ·p ),  bc = 1 − βᵗ.
 * p, m, v are copied to the outputs and updated there by the loop of `adamwInPlace`, so that both
 * give bit-equal results (-ffast-math may compile two copies of one formula differently).
 */
static napi_value AdamW(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[16];
  if (!parse(env, info, 16, &heap, a)) return NULL;
  const double n = a[7];
  if (!region(env, &heap, a[0], n, "p") || !region(env, &heap, a[1], n, "g") || !region(env, &heap, a[2], n, "m") || !region(env, &heap, a[3], n, "v") ||
      !region(env, &heap, a[4], n, "pOut") || !region(env, &heap, a[5], n, "mOut") || !region(env, &heap, a[6], n, "vOut"))
    return NULL;
  for (int i = 0; i < 3; i++)
    if (AT(i == 0 ? 0 : i + 1) != AT(i + 4)) memmove(AT(i + 4), AT(i == 0 ? 0 : i + 1), (size_t)n * sizeof(float));
  adamw_inplace_t c = {.p = AT(4),
                       .g = AT(1),
                       .m = AT(5),
                       .v = AT(6),
                       .lr = (float)a[8],
                       .b1 = (float)a[9],
                       .b2 = (float)a[10],
                       .bc1 = (float)a[11],
                       .bc2 = (float)a[12],
                       .eps = (float)a[13],
                       .wd = (float)a[14],
                       .gs = (float)a[15]};
  run_ranges((int64_t)n, 1, adamw_inplace_range, &c);
  return NULL;
}

/*
 * adamwInPlace(heap, p, g, m, v, n, lr, beta1, beta2, bc1, bc2, eps, weightDecay, gradScale)
 * The `adamw` update written over p, m and v (which must not overlap each other or g): no new
 * tensors, and each cache line is read and written once.
 */
static napi_value AdamWInPlace(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[13];
  if (!parse(env, info, 13, &heap, a)) return NULL;
  const double n = a[4];
  if (!region(env, &heap, a[0], n, "p") || !region(env, &heap, a[1], n, "g") || !region(env, &heap, a[2], n, "m") || !region(env, &heap, a[3], n, "v"))
    return NULL;
  const double offs[4] = {a[0], a[1], a[2], a[3]};
  for (int i = 0; i < 4; i++)
    for (int j = i + 1; j < 4; j++)
      if (offs[i] < offs[j] + n && offs[j] < offs[i] + n) {
        napi_throw_range_error(env, NULL, "xyp_blas: adamwInPlace operands overlap");
        return NULL;
      }
  adamw_inplace_t c = {.p = AT(0),
                       .g = AT(1),
                       .m = AT(2),
                       .v = AT(3),
                       .lr = (float)a[5],
                       .b1 = (float)a[6],
                       .b2 = (float)a[7],
                       .bc1 = (float)a[8],
                       .bc2 = (float)a[9],
                       .eps = (float)a[10],
                       .wd = (float)a[11],
                       .gs = (float)a[12]};
  run_ranges((int64_t)n, 1, adamw_inplace_range, &c);
  return NULL;
}

/* sumSquares(heap, x, n): Σ x² in double precision (one thread: the order of the sum is fixed). */
static napi_value SumSquares(napi_env env, napi_callback_info info) {
  F32 heap;
  double a[2];
  if (!parse(env, info, 2, &heap, a)) return NULL;
  if (!region(env, &heap, a[0], a[1], "x")) return NULL;
  const float* x = AT(0);
  const int64_t n = (int64_t)a[1];
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += (double)x[i] * (double)x[i];
  napi_value out;
  CHECK(napi_create_double(env, total, &out));
  return out;
}

/* ---- decoding: every layer for the next tokens of each row, with a KV cache ---- */

/* A typed array argument of the given type (Float32Array, Float64Array, Int32Array). */
static bool get_typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length, const char* what) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok || type != want) {
    char msg[96];
    snprintf(msg, sizeof msg, "xyp_blas: %s has the wrong array type", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

static bool too_short(napi_env env, size_t have, double need, const char* what) {
  if ((double)have >= need) return false;
  char msg[128];
  snprintf(msg, sizeof msg, "xyp_blas: %s is too short (%zu < %.0f)", what, have, need);
  napi_throw_range_error(env, NULL, msg);
  return true;
}

typedef struct {
  const float *q, *kc, *vc; /* queries [M, D]; this layer's cache [B, S, D] */
  float* o;                 /* [M, D] */
  float* scores;            /* [S] */
  const int32_t* starts;    /* [B] first slot each row may attend */
  int64_t T, past, S, D, H, dh;
  float scale;
} decode_attention_t;

/*
 * Row b, head h: for each of the row's T new queries (slot past + t), the softmax over the visible
 * slots [starts[b], past + t] of scale · q·k, and o = Σ p·v. A query with no visible slot attends to
 * every slot [0, past + T) with equal weight, as the −1e9 bias of the TF.js path gives.
 */
static void decode_attention_head(const decode_attention_t* c, int64_t b, int64_t h) {
  const int64_t D = c->D, dh = c->dh;
  float* sc = c->scores;
  const float* kb = c->kc + b * c->S * D + h * dh;
  const float* vb = c->vc + b * c->S * D + h * dh;
  for (int64_t t = 0; t < c->T; t++) {
    const int64_t m = b * c->T + t;
    const float* restrict qv = c->q + m * D + h * dh;
    float* restrict ov = c->o + m * D + h * dh;
    int64_t lo = c->starts[b], hi = c->past + t + 1;
    const bool none = lo >= hi;
    if (none) {
      lo = 0;
      hi = c->past + c->T;
    }
    float max = -FLT_MAX;
    for (int64_t j = lo; j < hi; j++) {
      const float* restrict kv = kb + j * D;
      float s = 0;
      for (int64_t d = 0; d < dh; d++) s += qv[d] * kv[d];
      s = none ? 0.0f : s * c->scale;
      sc[j] = s;
      max = s > max ? s : max;
    }
    float sum = 0;
    for (int64_t j = lo; j < hi; j++) {
      const float e = expf(sc[j] - max);
      sc[j] = e;
      sum += e;
    }
    for (int64_t d = 0; d < dh; d++) ov[d] = 0;
    const float inv = 1.0f / sum;
    for (int64_t j = lo; j < hi; j++) {
      const float p = sc[j] * inv;
      const float* restrict vv = vb + j * D;
      for (int64_t d = 0; d < dh; d++) ov[d] += p * vv[d];
    }
  }
}

/* y[r] = x[r] · g / √(mean(x[r]²) + ε), rows of width d. */
static void rms_norm_rows(const float* x, const float* g, float* y, int64_t rows, int64_t d, float eps) {
  for (int64_t i = 0; i < rows; i++) {
    const float* restrict xi = x + i * d;
    float* restrict yi = y + i * d;
    float ss = 0;
    for (int64_t j = 0; j < d; j++) ss += xi[j] * xi[j];
    const float r = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t j = 0; j < d; j++) yi[j] = xi[j] * r * g[j];
  }
}

/* Rotary on rows of `heads` heads of width dh, row i at position pos[i]; cos/sin tables `[P, dh/2]`. */
static void rotary_positions(float* x, const int32_t* pos, const float* cosT, const float* sinT, int64_t rows, int64_t heads, int64_t dh) {
  const int64_t half = dh / 2;
  for (int64_t i = 0; i < rows; i++) {
    const float* cs = cosT + (int64_t)pos[i] * half;
    const float* sn = sinT + (int64_t)pos[i] * half;
    for (int64_t h = 0; h < heads; h++) {
      float* xh = x + (i * heads + h) * dh;
      for (int64_t j = 0; j < half; j++) {
        const float x1 = xh[j], x2 = xh[j + half];
        xh[j] = x1 * cs[j] - x2 * sn[j];
        xh[j + half] = x2 * cs[j] + x1 * sn[j];
      }
    }
  }
}

/*
 * Thin products for decoding: C[M,N] = A[M,K]·B[K,N] (+ C when `accumulate`), row-major, M small (one
 * token per row). sgemm packs B, the weight matrix, on every call, which costs more than the product
 * when M is a few rows; here each 4-row block streams B once, 4 vectors of columns at a time, with the
 * 4 × 4 accumulators in registers. Columns past the last whole block go through a plain loop.
 */
#if defined(__AVX512F__)
#define THIN_VW 16
#else
#define THIN_VW 8
#endif
typedef float thin_v __attribute__((vector_size(THIN_VW * sizeof(float))));

static inline thin_v thin_load(const float* p) {
  thin_v v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void thin_store(float* p, thin_v v, bool accumulate) {
  if (accumulate) v += thin_load(p);
  memcpy(p, &v, sizeof v);
}

/* Rows m0..m0+R−1 (R ≤ 4, a compile-time constant after inlining), columns n0..n0+4·THIN_VW−1. */
static inline __attribute__((always_inline)) void thin_block(int R, int64_t m0, int64_t n0, int64_t N, int64_t K, const float* A, const float* B, bool accumulate,
                                                             float* C) {
  thin_v acc[4][4] = {{{0}}};
  const float* a[4];
  for (int r = 0; r < 4; r++) a[r] = A + (m0 + (r < R ? r : 0)) * K;
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * N + n0;
    const thin_v b0 = thin_load(b), b1 = thin_load(b + THIN_VW), b2 = thin_load(b + 2 * THIN_VW), b3 = thin_load(b + 3 * THIN_VW);
    for (int r = 0; r < R; r++) {
      const float x = a[r][k];
      acc[r][0] += b0 * x;
      acc[r][1] += b1 * x;
      acc[r][2] += b2 * x;
      acc[r][3] += b3 * x;
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < 4; j++) thin_store(C + (m0 + r) * N + n0 + j * THIN_VW, acc[r][j], accumulate);
}

static void thin_gemm(int64_t M, int64_t N, int64_t K, const float* A, const float* B, bool accumulate, float* C) {
  const int64_t NB = 4 * THIN_VW;
  int64_t n0 = 0;
  for (; n0 + NB <= N; n0 += NB) {
    int64_t m0 = 0;
    for (; m0 + 4 <= M; m0 += 4) thin_block(4, m0, n0, N, K, A, B, accumulate, C);
    switch (M - m0) {
      case 3: thin_block(3, m0, n0, N, K, A, B, accumulate, C); break;
      case 2: thin_block(2, m0, n0, N, K, A, B, accumulate, C); break;
      case 1: thin_block(1, m0, n0, N, K, A, B, accumulate, C); break;
      default: break;
    }
  }
  for (int64_t m = 0; m < M && n0 < N; m++) {
    float* c = C + m * N;
    if (!accumulate)
      for (int64_t n = n0; n < N; n++) c[n] = 0;
    for (int64_t k = 0; k < K; k++) {
      const float x = A[m * K + k];
      const float* b = B + k * N;
      for (int64_t n = n0; n < N; n++) c[n] += x * b[n];
    }
  }
}

/* Rows up to which decoding multiplies with `thin_gemm` rather than sgemm (prefill has more). */
#define THIN_ROWS 64

/*
 * Set on a thread that runs `decodeScoreAsync`'s work: its products stay on `thin_gemm`, so that it
 * never changes or depends on OpenBLAS's process-wide thread count while the main thread uses it.
 */
static _Thread_local bool thin_only = false;

static void sgemm_nn(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta, float* c) {
  if (m <= THIN_ROWS || thin_only) {
    thin_gemm(m, n, k, a, b, beta != 0.0f, c);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0f, a, (blasint)k, b, (blasint)n, beta, c, (blasint)n);
}

enum { DEC_LAYERS, DEC_B, DEC_T, DEC_PAST, DEC_S, DEC_D, DEC_H, DEC_F, DEC_V, DEC_EPS, DEC_P, DEC_LEARNED, DEC_DIMS };
enum { W_TOK, W_POS, W_NORM_F, W_HEAD, W_LAYER0 };
enum { WL_NORM1, WL_Q, WL_K, WL_V, WL_O, WL_NORM2, WL_1, WL_2, WL_COUNT };

typedef struct {
  const float* heap;
  const double* w;
  float *kcache, *vcache, *scratch, *logits;
  const int32_t *ids, *positions, *starts;
  const float *cosT, *sinT;
  int64_t layers, B, T, past, S, D, H, F, V;
  int groups;
  float eps;
  bool learned;
  /* Scoring (`score`, `decodeScore`: targets set): every new token's log-probability of its target
   * (score_rows) instead of the last token's logits, and its value when values is set (`score` only). */
  const int32_t* targets;
  float *logp, *values;
  /* `score` (teacher-forced, no KV cache) rather than `decode` or `decodeScore`. */
  bool teacher;
  /* decode: the final-norm hidden state of each row's last new token, [B, D], when set. */
  float* hidden;
} decode_t;

/* Rows of LM logits one scoring worker holds at a time. */
#define SCORE_CHUNK 128

/*
 * A scoring worker's scratch (after the M·(5D + F) + 16·S of decoding): SCORE_CHUNK·V logits, then
 * the attention weights of one row and head, T·S floats (`score`: S = T; `decodeScore`: T queries
 * against up to S slots), both computed by sgemm.
 */
static int64_t score_scratch_floats(int64_t T, int64_t S, int64_t V) { return SCORE_CHUNK * V + T * S; }

static float* score_scratch(const decode_t* c, int worker) {
  return c->scratch + c->B * c->T * (5 * c->D + c->F) + MAX_WORKERS * c->S + (int64_t)worker * score_scratch_floats(c->T, c->S, c->V);
}

/* In place: x[0..n) ← softmax(x[0..n)) (max subtracted first). */
static void softmax_in_place(float* x, int64_t n) {
  float max = -FLT_MAX;
  for (int64_t j = 0; j < n; j++) max = x[j] > max ? x[j] : max;
  float sum = 0;
  for (int64_t j = 0; j < n; j++) {
    x[j] = expf(x[j] - max);
    sum += x[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) x[j] *= inv;
}

/*
 * Scoring attention for rows b0..b1−1 (all T tokens of each, from slot 0, no cache): per row and head,
 * A = scale · q·kᵀ `[T, T]` and o = softmax(A + mask)·v by sgemm, query t seeing keys [starts[b], t];
 * a query with no visible key attends to every key with equal weight (as the −1e9 bias of TF.js).
 * q, k, v, o: the group's `[rows, D]` matrices, row b's tokens from (b − b0)·T.
 */
static void score_attention(const decode_t* c, const float* q, const float* k, const float* v, float* o, int64_t b0, int64_t b1, float* a) {
  const int64_t T = c->T, D = c->D, dh = D / c->H;
  const float scale = 1.0f / sqrtf((float)dh);
  for (int64_t b = b0; b < b1; b++) {
    const int64_t base = (b - b0) * T * D;
    const int64_t start = c->starts[b];
    for (int64_t h = 0; h < c->H; h++) {
      const int64_t off = base + h * dh;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)T, (blasint)dh, scale, q + off, (blasint)D, k + off, (blasint)D, 0.0f, a,
                  (blasint)T);
      for (int64_t t = 0; t < T; t++) {
        float* ar = a + t * T;
        if (start > t) {
          for (int64_t j = 0; j < T; j++) ar[j] = 1.0f / (float)T;
          continue;
        }
        for (int64_t j = 0; j < start; j++) ar[j] = 0;
        softmax_in_place(ar + start, t - start + 1);
        for (int64_t j = t + 1; j < T; j++) ar[j] = 0;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)dh, (blasint)T, 1.0f, a, (blasint)T, v + off, (blasint)D, 0.0f, o + off,
                  (blasint)D);
    }
  }
}

/*
 * `decode_attention_head` for `decodeScore`, whose rows have many new queries each: row b, head h,
 * its T queries against the cached slots [starts[b], past + T) by sgemm (as `score_attention`),
 * A = scale · q·kᵀ `[T, n]` into the worker's scratch a, the softmax of each query t over the slots
 * it sees, [starts[b], past + t], the others 0, then o = A·v. A row some of whose queries see no slot
 * (starts[b] > past) takes `decode_attention_head` (uniform attention for those, as there).
 */
static void cached_score_attention(const decode_t* c, const decode_attention_t* at, int64_t b, int64_t h, float* a) {
  const int64_t lo = c->starts[b], T = c->T, D = c->D, dh = at->dh, n = c->past + T - lo;
  if (lo > c->past) {
    decode_attention_head(at, b, h);
    return;
  }
  const float* q = at->q + b * T * D + h * dh;
  float* o = at->o + b * T * D + h * dh;
  const float* k = at->kc + (b * c->S + lo) * D + h * dh;
  const float* v = at->vc + (b * c->S + lo) * D + h * dh;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)T, (blasint)n, (blasint)dh, at->scale, q, (blasint)D, k, (blasint)D, 0.0f, a, (blasint)n);
  for (int64_t t = 0; t < T; t++) {
    float* ar = a + t * n;
    const int64_t w = c->past - lo + t + 1; /* slots lo..past+t */
    softmax_in_place(ar, w);
    for (int64_t j = w; j < n; j++) ar[j] = 0;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)T, (blasint)dh, (blasint)n, 1.0f, a, (blasint)n, v, (blasint)D, 0.0f, o, (blasint)D);
}

/*
 * Scoring, after the last layer, for the group's `rows` tokens from token m0 (x their residual
 * stream): h = RMSNorm(x)·norm_f (into hn), value = h·value_w + value_b for every token when values
 * are wanted, then for each token whose target is not −1, logp = z[t] − logsumexp(z) with
 * z = h·lm_head, SCORE_CHUNK such tokens at a time (their rows of hn moved together first, never all
 * [rows, V]); a token whose target is −1 (a position nobody reads) gets logp 0 and costs no LM head.
 */
static void score_rows(const decode_t* c, const float* x, float* hn, int64_t m0, int64_t rows, int worker) {
  const int64_t D = c->D, V = c->V;
  const float* lm = c->heap + (int64_t)c->w[W_HEAD];
  rms_norm_rows(x, c->heap + (int64_t)c->w[W_NORM_F], hn, rows, D, c->eps);
  if (c->values) {
    const int64_t wl = W_LAYER0 + WL_COUNT * c->layers;
    const float* vw = c->heap + (int64_t)c->w[wl];
    const float vb = c->heap[(int64_t)c->w[wl + 1]];
    for (int64_t i = 0; i < rows; i++) {
      const float* h = hn + i * D;
      float s = 0;
      for (int64_t j = 0; j < D; j++) s += h[j] * vw[j];
      c->values[m0 + i] = s + vb;
    }
  }
  float* z = score_scratch(c, worker);
  int64_t idx[SCORE_CHUNK];
  int64_t n = 0, base = 0; /* n tokens gathered at rows base.. of hn */
  for (int64_t i = 0; i <= rows; i++) {
    if (i < rows) {
      const int64_t m = m0 + i;
      if (c->targets[m] < 0) {
        c->logp[m] = 0;
        continue;
      }
      /* base + n <= i: the row moves to a place already read. */
      if (base + n != i) memmove(hn + (base + n) * D, hn + i * D, (size_t)D * sizeof(float));
      idx[n++] = m;
      if (n < SCORE_CHUNK) continue;
    }
    if (n == 0) continue;
    sgemm_nn(n, V, D, hn + base * D, lm, 0.0f, z);
    for (int64_t k = 0; k < n; k++) {
      const float* zr = z + k * V;
      float max = zr[0];
      for (int64_t j = 1; j < V; j++) max = zr[j] > max ? zr[j] : max;
      float sum = 0;
      for (int64_t j = 0; j < V; j++) sum += expf(zr[j] - max);
      c->logp[idx[k]] = -(max + logf(sum) - zr[c->targets[idx[k]]]);
    }
    base += n;
    n = 0;
  }
}

/*
 * Rows [B·g/groups, B·(g+1)/groups) through every layer: rows do not interact while decoding, so each
 * group runs on its own thread, each product on single-threaded OpenBLAS. Group g works in the rows
 * of the [M, ·] scratch matrices that belong to its tokens.
 */
static void decode_group(void* ctx, int64_t g, int worker) {
  const decode_t* c = ctx;
  const int64_t b0 = c->B * g / c->groups, b1 = c->B * (g + 1) / c->groups;
  if (b1 <= b0) return;
  const int64_t T = c->T, D = c->D, F = c->F, S = c->S, H = c->H, M = c->B * T, dh = D / H;
  const int64_t m0 = b0 * T, rows = (b1 - b0) * T;
  float* x = c->scratch + m0 * D;
  float* h = c->scratch + M * D + m0 * D;
  float* q = c->scratch + 2 * M * D + m0 * D;
  float* k = c->scratch + 3 * M * D + m0 * D;
  float* v = c->scratch + 4 * M * D + m0 * D;
  float* u = c->scratch + 5 * M * D + m0 * F;
  float* scores = c->scratch + M * (5 * D + F) + (int64_t)worker * S;
  const int32_t* ids = c->ids + m0;
  const int32_t* positions = c->positions + m0;
#define W(i) (c->heap + (int64_t)c->w[i])
  for (int64_t m = 0; m < rows; m++) {
    memcpy(x + m * D, W(W_TOK) + (int64_t)ids[m] * D, (size_t)D * sizeof(float));
    if (c->learned) {
      const float* pe = W(W_POS) + (int64_t)positions[m] * D;
      for (int64_t j = 0; j < D; j++) x[m * D + j] += pe[j];
    }
  }
  for (int64_t l = 0; l < c->layers; l++) {
    const int64_t wl = W_LAYER0 + WL_COUNT * l;
    float* kc = c->teacher ? NULL : c->kcache + l * c->B * S * D; /* scoring keeps no cache */
    float* vc = c->teacher ? NULL : c->vcache + l * c->B * S * D;
    rms_norm_rows(x, W(wl + WL_NORM1), h, rows, D, c->eps);
    sgemm_nn(rows, D, D, h, W(wl + WL_Q), 0.0f, q);
    sgemm_nn(rows, D, D, h, W(wl + WL_K), 0.0f, k);
    sgemm_nn(rows, D, D, h, W(wl + WL_V), 0.0f, v);
    if (!c->learned) {
      rotary_positions(q, positions, c->cosT, c->sinT, rows, H, dh);
      rotary_positions(k, positions, c->cosT, c->sinT, rows, H, dh);
    }
    if (c->teacher) score_attention(c, q, k, v, h, b0, b1, score_scratch(c, worker) + SCORE_CHUNK * c->V);
    else {
      for (int64_t b = b0; b < b1; b++) {
        memcpy(kc + (b * S + c->past) * D, k + (b - b0) * T * D, (size_t)(T * D) * sizeof(float));
        memcpy(vc + (b * S + c->past) * D, v + (b - b0) * T * D, (size_t)(T * D) * sizeof(float));
      }
      /* Row b's queries and outputs at rows (b − b0)·T.. of the group's q and h. */
      const decode_attention_t a = {.q = q - m0 * D, .kc = kc, .vc = vc, .o = h - m0 * D, .scores = scores, .starts = c->starts, .T = T, .past = c->past, .S = S,
                                    .D = D, .H = H, .dh = dh, .scale = 1.0f / sqrtf((float)dh)};
      for (int64_t b = b0; b < b1; b++)
        for (int64_t hd = 0; hd < H; hd++) {
          if (c->targets) cached_score_attention(c, &a, b, hd, score_scratch(c, worker) + SCORE_CHUNK * c->V); /* decodeScore */
          else decode_attention_head(&a, b, hd);
        }
    }
    sgemm_nn(rows, D, D, h, W(wl + WL_O), 1.0f, x);
    rms_norm_rows(x, W(wl + WL_NORM2), h, rows, D, c->eps);
    sgemm_nn(rows, F, D, h, W(wl + WL_1), 0.0f, u);
    for (int64_t j = 0; j < rows * F; j++) u[j] = u[j] / (1.0f + expf(-1.702f * u[j]));
    sgemm_nn(rows, D, F, u, W(wl + WL_2), 1.0f, x);
  }
  if (c->targets) { /* score, decodeScore */
    score_rows(c, x, q, m0, rows, worker);
    return;
  }
  /* The last new token of each row: final norm (into the group's first rows of q), then the LM head. */
  for (int64_t b = b0; b < b1; b++) rms_norm_rows(x + ((b - b0) * T + T - 1) * D, W(W_NORM_F), q + (b - b0) * D, 1, D, c->eps);
  if (c->hidden) memcpy(c->hidden + b0 * D, q, (size_t)((b1 - b0) * D) * sizeof(float));
  sgemm_nn(b1 - b0, c->V, D, q, W(W_HEAD), 0.0f, c->logits + b0 * c->V);
#undef W
}

/*
 * The three entry points over decode_t: `decode` (KV cache, the last new token's logits), `score`
 * (teacher-forced, no cache) and `decodeScore` (KV cache, every new token's log-probability).
 */
typedef enum { MODE_DECODE, MODE_SCORE, MODE_DECODE_SCORE } decode_mode;

/* Tokens per thread below which a decoding call stays on one thread (batch 8 of single tokens does). */
#define DECODE_ROWS_PER_THREAD 32

/*
 * decode(heap, weights, kcache, vcache, scratch, ids, positions, starts, rope, logits, dims[, hidden])
 *
 * The model's forward pass for T new tokens of each of B rows, appended at slots past..past+T−1 of the
 * KV cache, and the LM logits of each row's last new token; with `hidden` (Float32Array [B, D]) also
 * the final-norm hidden state of each row's last new token (a value head's input).
 *   heap       Float32Array holding the weights (the WASM heap)
 *   weights    Float64Array of heap float indices: tok_emb [V,D], pos_emb [P,D] (learned positions, else
 *              ignored), norm_f [D], lm_head [D,V], then per layer norm1 [D], wq wk wv wo [D,D],
 *              norm2 [D], w1 [D,F], w2 [F,D]
 *   kcache, vcache  Float32Array [layers, B, S, D]: slot s of row b holds the key (rotated) and value
 *              of the token there; slots < past are read, past..past+T−1 written
 *   scratch    Float32Array of at least M·(5D + F) + 16·S floats, M = B·T
 *   ids, positions  Int32Array [M]: token ids (< V) and positions (< P: rotary angle or learned row)
 *   starts     Int32Array [B]: first slot row b may attend (left padding before it)
 *   rope       Float32Array [2, P, Dh/2]: cos, then sin, of position p and frequency i (rotary only)
 *   logits     Float32Array [B, V], written
 *   dims       Float64Array: layers, B, T, past, S, D, H, F, V, eps, P, learned (1) or rotary (0)
 * Per layer (pre-norm): x += (softmax(q·kᵀ/√Dh + mask)·v)·Wo with q, k, v = RMSNorm(x)·Wq,k,v (q and k
 * rotated), then x += gelu(RMSNorm(x)·W1)·W2, gelu(u) = u·σ(1.702u); logits = RMSNorm(x)·lm_head.
 * The rows are split into groups, one per thread (OpenBLAS's thread count, at least
 * DECODE_ROWS_PER_THREAD tokens each); every product runs on single-threaded OpenBLAS, whose own
 * threads cost more than they give on products this thin.
 */
/* Reads and checks the arguments of `decode`, `score` or `decodeScore` into *out; false when it threw. */
static bool decode_setup(napi_env env, napi_value* argv, size_t argc, decode_mode mode, decode_t* out) {
  const bool teacher = mode == MODE_SCORE;  /* no KV cache */
  const bool cached = !teacher;             /* kcache, vcache arguments */
  const bool scoring = mode != MODE_DECODE; /* targets, logp: score_rows at the end */
  if (mode == MODE_DECODE ? argc != 11 && argc != 12 : argc != (mode == MODE_SCORE ? 11 : 12)) {
    napi_throw_type_error(env, NULL,
                          mode == MODE_DECODE  ? "xyp_blas: decode takes 11 or 12 arguments"
                          : mode == MODE_SCORE ? "xyp_blas: score takes 11 arguments"
                                               : "xyp_blas: decodeScore takes 12 arguments");
    return false;
  }
  float* hidden = NULL;
  size_t nHidden = 0;
  F32 heap;
  double *w, *dims;
  float *kcache = NULL, *vcache = NULL, *scratch, *rope, *logits = NULL, *logp = NULL, *values = NULL;
  int32_t *ids, *positions, *starts, *targets = NULL;
  size_t nW, nK = 0, nV = 0, nScratch, nIds, nPos, nStarts, nRope, nLogits = 0, nDims, nTargets = 0, nLogp = 0, nValues = 0;
  /*
   * decode:      heap, weights, kcache, vcache, scratch, ids, positions, starts, rope, logits, dims[, hidden]
   * score:       heap, weights, scratch, ids, positions, starts, rope, targets, logp, values, dims
   * decodeScore: heap, weights, kcache, vcache, scratch, ids, positions, starts, rope, targets, logp, dims
   */
  const int a = cached ? 4 : 2;
  const int nDimsArg = mode == MODE_DECODE_SCORE ? 11 : 10;
  if (!get_f32(env, argv[0], &heap, "heap") || !get_typed(env, argv[1], napi_float64_array, (void**)&w, &nW, "weights") ||
      (cached && (!get_typed(env, argv[2], napi_float32_array, (void**)&kcache, &nK, "kcache") ||
                  !get_typed(env, argv[3], napi_float32_array, (void**)&vcache, &nV, "vcache"))) ||
      !get_typed(env, argv[a], napi_float32_array, (void**)&scratch, &nScratch, "scratch") ||
      !get_typed(env, argv[a + 1], napi_int32_array, (void**)&ids, &nIds, "ids") ||
      !get_typed(env, argv[a + 2], napi_int32_array, (void**)&positions, &nPos, "positions") ||
      !get_typed(env, argv[a + 3], napi_int32_array, (void**)&starts, &nStarts, "starts") ||
      !get_typed(env, argv[a + 4], napi_float32_array, (void**)&rope, &nRope, "rope") ||
      (mode == MODE_DECODE && !get_typed(env, argv[9], napi_float32_array, (void**)&logits, &nLogits, "logits")) ||
      (scoring && (!get_typed(env, argv[a + 5], napi_int32_array, (void**)&targets, &nTargets, "targets") ||
                   !get_typed(env, argv[a + 6], napi_float32_array, (void**)&logp, &nLogp, "logp"))) ||
      (mode == MODE_SCORE && !get_typed(env, argv[9], napi_float32_array, (void**)&values, &nValues, "values")) ||
      !get_typed(env, argv[nDimsArg], napi_float64_array, (void**)&dims, &nDims, "dims"))
    return false;
  if (nValues == 0) values = NULL; /* no value head wanted (and none in decodeScore) */
  if (mode == MODE_DECODE && argc == 12) {
    if (!get_typed(env, argv[11], napi_float32_array, (void**)&hidden, &nHidden, "hidden")) return false;
    if (nHidden == 0) hidden = NULL;
  }
  if (nDims != DEC_DIMS) {
    napi_throw_range_error(env, NULL, "xyp_blas: decode dims must hold 12 numbers");
    return false;
  }
  for (int i = 0; i < DEC_DIMS; i++)
    if (!(dims[i] >= 0) || (i != DEC_EPS && dims[i] != (double)(int64_t)dims[i])) {
      napi_throw_range_error(env, NULL, "xyp_blas: decode dims must be non-negative integers (eps a number)");
      return false;
    }
  decode_t c = {.heap = heap.data,
                .w = w,
                .kcache = kcache,
                .vcache = vcache,
                .scratch = scratch,
                .logits = logits,
                .ids = ids,
                .positions = positions,
                .starts = starts,
                .layers = (int64_t)dims[DEC_LAYERS],
                .B = (int64_t)dims[DEC_B],
                .T = (int64_t)dims[DEC_T],
                .past = (int64_t)dims[DEC_PAST],
                .S = (int64_t)dims[DEC_S],
                .D = (int64_t)dims[DEC_D],
                .H = (int64_t)dims[DEC_H],
                .F = (int64_t)dims[DEC_F],
                .V = (int64_t)dims[DEC_V],
                .eps = (float)dims[DEC_EPS],
                .learned = dims[DEC_LEARNED] != 0,
                .targets = targets,
                .logp = logp,
                .values = values,
                .teacher = teacher,
                .hidden = hidden};
  const int64_t layers = c.layers, B = c.B, T = c.T, S = c.S, D = c.D, H = c.H, F = c.F, V = c.V, P = (int64_t)dims[DEC_P], M = B * T;
  if (B == 0 || T == 0 || H == 0 || D % H != 0 || (D / H) % 2 != 0 || c.past + T > S) {
    napi_throw_range_error(env, NULL, "xyp_blas: decode needs B, T, H > 0, D divisible by H into even head widths, past + T <= S");
    return false;
  }
  const int64_t half = D / H / 2;
  if (teacher && (c.past != 0 || S != T)) {
    napi_throw_range_error(env, NULL, "xyp_blas: score needs past = 0 and S = T");
    return false;
  }
  const double scoreScratch = scoring ? (double)(MAX_WORKERS * score_scratch_floats(T, S, V)) : 0;
  if (too_short(env, nW, (double)(W_LAYER0 + WL_COUNT * layers + (values ? 2 : 0)), "weights") ||
      (cached && (too_short(env, nK, (double)(layers * B * S * D), "kcache") || too_short(env, nV, (double)(layers * B * S * D), "vcache"))) ||
      too_short(env, nScratch, (double)(M * (5 * D + F) + MAX_WORKERS * S) + scoreScratch, "scratch") ||
      too_short(env, nIds, (double)M, "ids") || too_short(env, nPos, (double)M, "positions") || too_short(env, nStarts, (double)B, "starts") ||
      (!c.learned && too_short(env, nRope, (double)(2 * P * half), "rope")) || (mode == MODE_DECODE && too_short(env, nLogits, (double)(B * V), "logits")) ||
      (scoring && (too_short(env, nTargets, (double)M, "targets") || too_short(env, nLogp, (double)M, "logp") || (values && too_short(env, nValues, (double)M, "values")))) ||
      (hidden && too_short(env, nHidden, (double)(B * D), "hidden")))
    return false;
  /* Every weight inside the heap. */
  if (!region(env, &heap, w[W_TOK], (double)(V * D), "tok_emb") || (c.learned && !region(env, &heap, w[W_POS], (double)(P * D), "pos_emb")) ||
      !region(env, &heap, w[W_NORM_F], (double)D, "norm_f") || !region(env, &heap, w[W_HEAD], (double)(D * V), "lm_head"))
    return false;
  for (int64_t l = 0; l < layers; l++) {
    const double* wl = w + W_LAYER0 + WL_COUNT * l;
    const double sizes[WL_COUNT] = {(double)D, (double)(D * D), (double)(D * D), (double)(D * D), (double)(D * D), (double)D, (double)(D * F), (double)(F * D)};
    for (int j = 0; j < WL_COUNT; j++)
      if (!region(env, &heap, wl[j], sizes[j], "layer weight")) return false;
  }
  if (values) {
    const double* wv = w + W_LAYER0 + WL_COUNT * layers;
    if (!region(env, &heap, wv[0], (double)D, "value_w") || !region(env, &heap, wv[1], 1, "value_b")) return false;
  }
  if (scoring) /* −1: a position whose log-probability is not wanted */
    for (int64_t i = 0; i < M; i++)
      if (targets[i] < -1 || targets[i] >= V) {
        napi_throw_range_error(env, NULL, "xyp_blas: targets has an index outside [-1, V)");
        return false;
      }
  if (!indices_in(env, ids, M, V, "ids") || !indices_in(env, positions, M, P, "positions") || !indices_in(env, starts, B, S + 1, "starts")) return false;
  c.cosT = rope;
  c.sinT = rope + P * half;
  c.groups = clamp_workers(B, openblas_get_num_threads());
  if (c.groups > M / DECODE_ROWS_PER_THREAD) c.groups = M / DECODE_ROWS_PER_THREAD < 1 ? 1 : (int)(M / DECODE_ROWS_PER_THREAD);
  *out = c;
  return true;
}

static void decode_run(decode_t* c) {
  if (c->groups > 1) run_parallel(c->groups, decode_group, c, c->groups);
  else {
    const int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    decode_group(c, 0, 0);
    openblas_set_num_threads(threads);
  }
}

static napi_value decode_mode_call(napi_env env, napi_callback_info info, decode_mode mode) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  decode_t c;
  if (decode_setup(env, argv, argc, mode, &c)) decode_run(&c);
  return NULL;
}

static napi_value Decode(napi_env env, napi_callback_info info) { return decode_mode_call(env, info, MODE_DECODE); }

/*
 * score(heap, weights, scratch, ids, positions, starts, rope, targets, logp, values, dims)
 *
 * Teacher-forced scoring: the forward pass of `decode` over the T tokens of each of B rows, without a
 * KV cache (dims: past 0, S = T; attention by sgemm per row and head, `score_attention`), and for
 * every token m < B·T, from its final-norm hidden state h:
 *   logp[m] = log softmax(h·lm_head)[targets[m]]   (temperature 1; the [B·T, V] logits are never stored,
 *             SCORE_CHUNK rows per worker at a time)
 *   values[m] = h·value_w + value_b   when `values` is not empty; then `weights` holds two more heap
 *             indices after the layers': value_w [D], value_b [1]
 * Other arguments as `decode`'s; targets Int32Array [B·T] (< V), logp and values Float32Array [B·T]
 * (values may be empty), scratch at least M·(5D + F) + 16·S + 16·(SCORE_CHUNK·V + S·S) floats.
 */
static napi_value Score(napi_env env, napi_callback_info info) { return decode_mode_call(env, info, MODE_SCORE); }

/*
 * decodeScore(heap, weights, kcache, vcache, scratch, ids, positions, starts, rope, targets, logp, dims)
 *
 * Cached teacher-forced scoring: the forward pass of `decode` (T new tokens of each of B rows written
 * at slots past..past+T−1 of the KV cache, attending to the slots before them from starts[b], causal
 * among themselves), but instead of the last new token's logits, for every new token m < B·T whose
 * target is not −1, from its final-norm hidden state h (as `score`, `score_rows`):
 *   logp[m] = log softmax(h·lm_head)[targets[m]]   (temperature 1; 0 and no LM head where targets[m] = −1)
 * A prompt's KV slots can be filled once by `decode` and copied into the rows of each of its samples,
 * which then score only their own tokens (nativeScoreSharedPrompts in libs/engine/src/native.ts).
 * Arguments as `decode`'s (logits replaced by targets Int32Array [B·T] in [−1, V) and logp
 * Float32Array [B·T], written; no hidden), scratch at least M·(5D + F) + 16·S + 16·(SCORE_CHUNK·V + T·S)
 * floats. Attention runs by sgemm per row and head over the row's cached slots
 * (`cached_score_attention`), not query by query as decoding's.
 */
static napi_value DecodeScore(napi_env env, napi_callback_info info) { return decode_mode_call(env, info, MODE_DECODE_SCORE); }

/*
 * decodeScoreAsync(heap, weights, kcache, vcache, scratch, ids, positions, starts, rope, targets, logp, dims)
 *   → Promise<undefined>
 *
 * `decodeScore` off the JS thread: the arguments are checked here (a wrong one throws, as
 * decodeScore's do), then the pass runs on a libuv worker thread, on that thread alone (one row
 * group, every product on `thin_gemm`), and the promise resolves once logp is written. The caller
 * must leave every array alone until then, and `heap` must not be the WASM heap (it can move when
 * the heap grows): a copy of the weights that nothing else writes. The arrays are referenced until
 * the work completes, so dropping the promise does not free them under it.
 */
#define ASYNC_ARGS 12

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[ASYNC_ARGS];
  decode_t c;
} decode_async_t;

static void decode_async_execute(napi_env env, void* data) {
  (void)env;
  decode_async_t* job = data;
  thin_only = true;
  job->c.groups = 1;
  decode_group(&job->c, 0, 0);
  thin_only = false;
}

static void decode_async_complete(napi_env env, napi_status status, void* data) {
  decode_async_t* job = data;
  napi_value result;
  if (status == napi_ok) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "xyp_blas: decodeScoreAsync did not run (cancelled)", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  for (int i = 0; i < ASYNC_ARGS; i++) napi_delete_reference(env, job->refs[i]);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value DecodeScoreAsync(napi_env env, napi_callback_info info) {
  size_t argc = ASYNC_ARGS;
  napi_value argv[ASYNC_ARGS];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != ASYNC_ARGS) {
    napi_throw_type_error(env, NULL, "xyp_blas: decodeScoreAsync takes 12 arguments");
    return NULL;
  }
  decode_t c;
  if (!decode_setup(env, argv, argc, MODE_DECODE_SCORE, &c)) return NULL;
  decode_async_t* job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "xyp_blas: decodeScoreAsync is out of memory");
    return NULL;
  }
  job->c = c;
  napi_value promise, name;
  int refs = 0;
  bool ok = napi_create_promise(env, &job->deferred, &promise) == napi_ok;
  for (; ok && refs < ASYNC_ARGS; refs++) ok = napi_create_reference(env, argv[refs], 1, &job->refs[refs]) == napi_ok;
  ok = ok && napi_create_string_utf8(env, "xyp_blas.decodeScoreAsync", NAPI_AUTO_LENGTH, &name) == napi_ok &&
       napi_create_async_work(env, NULL, name, decode_async_execute, decode_async_complete, job, &job->work) == napi_ok &&
       napi_queue_async_work(env, job->work) == napi_ok;
  if (!ok) {
    for (int i = 0; i < refs; i++) napi_delete_reference(env, job->refs[i]);
    free(job);
    napi_throw_error(env, NULL, "xyp_blas: decodeScoreAsync could not queue its work");
    return NULL;
  }
  return promise;
}

/* ---- top-p: the nucleus order of `sampleToken` (libs/engine/src/generate.ts), row by row ---- */

#define NUCLEUS_BUCKETS 2048

typedef struct {
  const float* logits;   /* [R, V] */
  const double* probs;   /* [R, V]: exp((z − max)/temperature) */
  const double* targets; /* [R]: topP · Σp */
  int32_t* order;        /* [R, V] out: the first counts[r] entries */
  int32_t* counts;       /* [R] out */
  uint32_t* scratch;     /* per worker: keys [V], keys2 [V], order2 [V] */
  int64_t V;
} nucleus_t;

static const double* nucleus_probs; /* for the comparison sort's comparator (only under fullSort, one thread) */

static int by_probability(const void* a, const void* b) {
  const int32_t i = *(const int32_t*)a, j = *(const int32_t*)b;
  const double pi = nucleus_probs[i], pj = nucleus_probs[j];
  if (pi != pj) return pi > pj ? -1 : 1;
  return i < j ? -1 : (i > j ? 1 : 0);
}

static int by_index(const void* a, const void* b) {
  const int32_t i = *(const int32_t*)a, j = *(const int32_t*)b;
  return i < j ? -1 : (i > j ? 1 : 0);
}

static pthread_mutex_t nucleus_sort_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every token, ordered by p descending, ties by index ascending (the reference comparison sort). */
static int64_t nucleus_full_sort(const double* p, int32_t* order, int64_t V) {
  for (int64_t i = 0; i < V; i++) order[i] = (int32_t)i;
  pthread_mutex_lock(&nucleus_sort_lock);
  nucleus_probs = p;
  qsort(order, (size_t)V, sizeof(int32_t), by_probability);
  pthread_mutex_unlock(&nucleus_sort_lock);
  return V;
}

/* The steps of `nucleusCandidates` in generate.ts, with the same result (n and order[0..n)). */
static int64_t nucleus_row(const float* z, const double* p, double target, int32_t* order, int64_t V, uint32_t* scratch) {
  uint32_t* keys = scratch;
  uint32_t* keys2 = scratch + V;
  int32_t* order2 = (int32_t*)(scratch + 2 * V);
  int32_t count[NUCLEUS_BUCKETS];
  double mass[NUCLEUS_BUCKETS];
  memset(count, 0, sizeof count);
  memset(mass, 0, sizeof mass);
  for (int64_t i = 0; i < V; i++) {
    uint32_t b;
    memcpy(&b, z + i, sizeof b);
    if (b == 0x80000000u) b = 0; /* −0 as +0 */
    const uint32_t key = (b & 0x80000000u) ? b : 0x7fffffffu - b;
    keys[i] = key;
    count[key >> 21]++;
    mass[key >> 21] += p[i];
  }
  const double bound = target * (1 + 1e-9);
  int cut = NUCLEUS_BUCKETS - 1;
  double acc = 0;
  for (int c = 0; c < NUCLEUS_BUCKETS; c++) {
    acc += mass[c];
    if (count[c] > 0 && acc >= bound) {
      cut = c;
      break;
    }
  }
  int64_t n = 0;
  double maxExcluded = -1;
  for (int64_t i = 0; i < V; i++) {
    const uint32_t key = keys[i];
    if ((int)(key >> 21) <= cut) {
      keys[n] = key;
      order[n++] = (int32_t)i;
    } else if (p[i] > maxExcluded)
      maxExcluded = p[i];
  }
  /* Stable LSD radix sort on the key, digits of 11, 11 and 10 bits. */
  uint32_t *k = keys, *kOut = keys2;
  int32_t *o = order, *oOut = order2;
  for (int shift = 0; shift < 32; shift += 11) {
    memset(count, 0, sizeof count);
    for (int64_t j = 0; j < n; j++) count[(k[j] >> shift) & (NUCLEUS_BUCKETS - 1)]++;
    if (n == 0 || count[(k[0] >> shift) & (NUCLEUS_BUCKETS - 1)] == n) continue;
    int32_t sum = 0;
    for (int d = 0; d < NUCLEUS_BUCKETS; d++) {
      const int32_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (int64_t j = 0; j < n; j++) {
      const int32_t at = count[(k[j] >> shift) & (NUCLEUS_BUCKETS - 1)]++;
      kOut[at] = k[j];
      oOut[at] = o[j];
    }
    uint32_t* tk = k;
    k = kOut;
    kOut = tk;
    int32_t* to = o;
    o = oOut;
    oOut = to;
  }
  if (o != order) memcpy(order, o, (size_t)n * sizeof(int32_t));
  for (int64_t j = 1; j < n; j++)
    if (p[order[j]] > p[order[j - 1]]) return nucleus_full_sort(p, order, V);
  if (n < V && n > 0 && maxExcluded >= p[order[n - 1]]) return nucleus_full_sort(p, order, V);
  /* Equal p from different logits: index order within the run. */
  for (int64_t j = 1; j < n;) {
    if (p[order[j]] != p[order[j - 1]]) {
      j++;
      continue;
    }
    const int64_t start = j - 1;
    int64_t end = j + 1;
    while (end < n && p[order[end]] == p[order[start]]) end++;
    for (int64_t r = start + 1; r < end; r++)
      if (order[r] < order[r - 1]) {
        qsort(order + start, (size_t)(end - start), sizeof(int32_t), by_index);
        break;
      }
    j = end;
  }
  return n;
}

static void nucleus_task(void* ctx, int64_t r, int worker) {
  const nucleus_t* c = ctx;
  const int64_t V = c->V;
  c->counts[r] = (int32_t)nucleus_row(c->logits + r * V, c->probs + r * V, c->targets[r], c->order + r * V, V, c->scratch + (int64_t)worker * 3 * V);
}

/*
 * nucleus(logits, probs, targets, order, counts, rows, vocab)
 * For each row r: order[r, 0..n) (n → counts[r]) the tokens sorted by probs descending, ties by
 * index ascending, a prefix of the full order whose mass reaches targets[r] (or all V tokens), as
 * `nucleusCandidates` in generate.ts gives them. Rows run in parallel above 2^17 logits in all.
 */
static napi_value Nucleus(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "xyp_blas: nucleus takes 7 arguments");
    return NULL;
  }
  float* logits;
  double *probs, *targets;
  int32_t *order, *counts;
  size_t nLogits, nProbs, nTargets, nOrder, nCounts;
  int64_t R, V;
  if (!get_typed(env, argv[0], napi_float32_array, (void**)&logits, &nLogits, "logits") ||
      !get_typed(env, argv[1], napi_float64_array, (void**)&probs, &nProbs, "probs") ||
      !get_typed(env, argv[2], napi_float64_array, (void**)&targets, &nTargets, "targets") ||
      !get_typed(env, argv[3], napi_int32_array, (void**)&order, &nOrder, "order") ||
      !get_typed(env, argv[4], napi_int32_array, (void**)&counts, &nCounts, "counts") || !get_i64(env, argv[5], &R, "rows") ||
      !get_i64(env, argv[6], &V, "vocab"))
    return NULL;
  if (V == 0 || V > 0x7fffffff || too_short(env, nLogits, (double)(R * V), "logits") || too_short(env, nProbs, (double)(R * V), "probs") ||
      too_short(env, nTargets, (double)R, "targets") || too_short(env, nOrder, (double)(R * V), "order") || too_short(env, nCounts, (double)R, "counts"))
    return NULL;
  if (R == 0) return NULL;
  const int workers = R * V < ((int64_t)1 << 17) ? 1 : clamp_workers(R, openblas_get_num_threads());
  uint32_t* scratch = malloc((size_t)(workers * 3 * V) * sizeof(uint32_t));
  if (!scratch) {
    napi_throw_error(env, NULL, "xyp_blas: out of memory");
    return NULL;
  }
  nucleus_t c = {.logits = logits, .probs = probs, .targets = targets, .order = order, .counts = counts, .scratch = scratch, .V = V};
  if (workers == 1)
    for (int64_t r = 0; r < R; r++) nucleus_task(&c, r, 0);
  else
    run_parallel(R, nucleus_task, &c, workers);
  free(scratch);
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t threads;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_i64(env, argv[0], &threads, "threads")) return NULL;
  openblas_set_num_threads((int)threads);
  return NULL;
}

static napi_value Threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &out));
  return out;
}

static napi_value Config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"gemm", NULL, Gemm, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, Threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, CrossEntropy, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, CrossEntropyGrad, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyLse", NULL, CrossEntropyLse, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyLseGrad", NULL, CrossEntropyLseGrad, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, Gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, GeluGrad, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, RmsNorm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, RmsNormGrad, NULL, NULL, NULL, napi_default, NULL},
      {"rotary", NULL, Rotary, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, Attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, AttentionGrad, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, GatherRows, NULL, NULL, NULL, napi_default, NULL},
      {"scatterAddRows", NULL, ScatterAddRows, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, AdamW, NULL, NULL, NULL, napi_default, NULL},
      {"adamwInPlace", NULL, AdamWInPlace, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, SumSquares, NULL, NULL, NULL, napi_default, NULL},
      {"decode", NULL, Decode, NULL, NULL, NULL, napi_default, NULL},
      {"score", NULL, Score, NULL, NULL, NULL, napi_default, NULL},
      {"decodeScore", NULL, DecodeScore, NULL, NULL, NULL, napi_default, NULL},
      {"decodeScoreAsync", NULL, DecodeScoreAsync, NULL, NULL, NULL, napi_default, NULL},
      {"nucleus", NULL, Nucleus, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
