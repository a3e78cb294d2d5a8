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
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
